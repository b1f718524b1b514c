//! PriorityLevelConfigurations: upstream's v1 defaults (nominal shares,
//! lendable percent, queuing), validation of the type and its matching
//! section, and the columns.

use serde_json::{json, Value};

use crate::field::FieldCause;
use crate::kinds::{set_default, KindRules};
use crate::table::print::str_at;
use crate::table::{col, Column, AGE, NAME};

/// The rules of `flowcontrol.apiserver.k8s.io/v1` PriorityLevelConfiguration.
#[derive(Debug, Clone, Copy, Default)]
pub struct PriorityLevelConfiguration;

impl KindRules for PriorityLevelConfiguration {
    fn tracks_generation(&self) -> bool {
        true
    }

    fn default(&self, obj: &mut Value) {
        if let Some(exempt) = obj
            .pointer_mut("/spec/exempt")
            .and_then(Value::as_object_mut)
        {
            set_default(exempt, "nominalConcurrencyShares", json!(0));
            set_default(exempt, "lendablePercent", json!(0));
        }
        if let Some(limited) = obj
            .pointer_mut("/spec/limited")
            .and_then(Value::as_object_mut)
        {
            set_default(limited, "nominalConcurrencyShares", json!(30));
            set_default(limited, "lendablePercent", json!(0));
        }
        if let Some(queuing) = obj
            .pointer_mut("/spec/limited/limitResponse/queuing")
            .and_then(Value::as_object_mut)
        {
            set_default(queuing, "handSize", json!(8));
            set_default(queuing, "queues", json!(64));
            set_default(queuing, "queueLengthLimit", json!(50));
        }
    }

    fn validate(&self, obj: &Value) -> Vec<FieldCause> {
        let mut causes = Vec::new();
        let limited = obj.pointer("/spec/limited");
        match str_at(obj, &["spec", "type"]).unwrap_or("") {
            "" => causes.push(FieldCause::required("spec.type", "")),
            "Exempt" => {
                if limited.is_some() {
                    causes.push(FieldCause::forbidden(
                        "spec.limited",
                        "must be nil if the type is not Limited",
                    ));
                }
            }
            "Limited" => match limited {
                None => causes.push(FieldCause::required(
                    "spec.limited",
                    "must not be empty when type is Limited",
                )),
                Some(limited) => {
                    if let Some(p) = limited.get("lendablePercent").and_then(Value::as_i64) {
                        if !(0..=100).contains(&p) {
                            causes.push(FieldCause::invalid(
                                "spec.limited.lendablePercent",
                                &json!(p),
                                "must be between 0 and 100, inclusive",
                            ));
                        }
                    }
                    match str_at(limited, &["limitResponse", "type"]).unwrap_or("") {
                        "Queue" => {
                            if limited.pointer("/limitResponse/queuing").is_none() {
                                causes.push(FieldCause::required(
                                    "spec.limited.limitResponse.queuing",
                                    "must not be empty if type is Queue",
                                ));
                            }
                        }
                        "Reject" => {
                            if limited.pointer("/limitResponse/queuing").is_some() {
                                causes.push(FieldCause::forbidden(
                                    "spec.limited.limitResponse.queuing",
                                    "must be nil if limited.limitResponse.type is not Limited",
                                ));
                            }
                        }
                        other => causes.push(FieldCause::not_supported(
                            "spec.limited.limitResponse.type",
                            &json!(other),
                            &["Queue", "Reject"],
                        )),
                    }
                }
            },
            other => causes.push(FieldCause::not_supported(
                "spec.type",
                &json!(other),
                &["Exempt", "Limited"],
            )),
        }
        causes
    }

    fn columns(&self) -> Vec<Column> {
        vec![
            NAME,
            col("Type", "string", 0, "`type` indicates whether this priority level is subject to limitation on request execution.  A value of `\"Exempt\"` means that requests of this priority level are not subject to a limit (and thus are never queued) and do not detract from the capacity made available to other priority levels.  A value of `\"Limited\"` means that (a) requests of this priority level _are_ subject to limits and (b) some of the server's limited capacity is made available exclusively to this priority level. Required."),
            col("NominalConcurrencyShares", "string", 0, "nominalConcurrencyShares (NCS) contributes to the computation of the NominalConcurrencyLimit (NominalCL) of this level."),
            col("Queues", "string", 0, "`queues` is the number of queues for this priority level. The queues exist independently at each apiserver. The value must be positive.  Setting it to 1 effectively precludes shufflesharding and thus makes the distinguisher method of associated flow schemas irrelevant.  This field has a default value of 64."),
            col("HandSize", "string", 0, "`handSize` is a small positive number that configures the shuffle sharding of requests into queues.  When enqueuing a request at this priority level the request's flow identifier (a string pair) is hashed and the hash value is used to shuffle the list of queues and deal a hand of the size specified here.  The request is put into one of the shortest queues in that hand. `handSize` must be no larger than `queues`, and should be significantly smaller (so that a few heavy flows do not saturate most of the queues).  See the user-facing documentation for more extensive guidance on setting this field.  This field has a default value of 8."),
            col("QueueLengthLimit", "string", 0, "`queueLengthLimit` is the maximum number of requests allowed to be waiting in a given queue of this priority level at a time; excess requests are rejected.  This value must be positive.  If not specified, it will be defaulted to 50."),
            AGE,
        ]
    }

    fn cells(&self, obj: &Value, now: jiff::Timestamp) -> Vec<Value> {
        let none = || json!("<none>");
        let limited = obj.pointer("/spec/limited");
        let ncs = limited
            .and_then(|l| l.get("nominalConcurrencyShares"))
            .cloned()
            .unwrap_or_else(none);
        let queuing = limited.and_then(|l| l.pointer("/limitResponse/queuing"));
        let q = |field: &str| {
            queuing
                .and_then(|q| q.get(field))
                .cloned()
                .unwrap_or_else(none)
        };
        vec![
            crate::table::name_cell(obj),
            json!(str_at(obj, &["spec", "type"]).unwrap_or_default()),
            ncs,
            q("queues"),
            q("handSize"),
            q("queueLengthLimit"),
            crate::table::age_cell(obj, now),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limited_levels_default_and_validate() {
        let mut obj = json!({"spec": {"type": "Limited", "limited": {"limitResponse": {"type": "Queue", "queuing": {}}}}});
        PriorityLevelConfiguration.default(&mut obj);
        assert_eq!(obj["spec"]["limited"]["nominalConcurrencyShares"], 30);
        assert_eq!(
            obj["spec"]["limited"]["limitResponse"]["queuing"]["queues"],
            64
        );
        assert!(PriorityLevelConfiguration.validate(&obj).is_empty());
        let got = PriorityLevelConfiguration.validate(&json!({"spec": {"type": "Limited"}}));
        assert_eq!(
            got[0].message,
            "Required value: must not be empty when type is Limited"
        );
        let got = PriorityLevelConfiguration.validate(&json!({"spec": {"type": "Sometimes"}}));
        assert_eq!(
            got[0].message,
            "Unsupported value: \"Sometimes\": supported values: \"Exempt\", \"Limited\""
        );
        let exempt =
            json!({"metadata": {"name": "exempt"}, "spec": {"type": "Exempt", "exempt": {}}});
        let cells = PriorityLevelConfiguration.cells(&exempt, jiff::Timestamp::now());
        assert_eq!(cells[2], json!("<none>"));
    }
}
