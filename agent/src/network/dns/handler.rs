//! The hickory request handler: cluster names from the current
//! [`ClusterRecords`], everything else from the node's resolvers. It never
//! calls the API; the records are swapped in whole when the watches change.

use std::sync::Arc;

use hickory_proto::op::{Edns, Header, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::{Name, RData, Record, RecordType};
use hickory_server::authority::MessageResponseBuilder;
use hickory_server::server::{Request, RequestHandler, ResponseHandler, ResponseInfo};
use tokio::sync::watch;

use super::forward::Forwarder;
use super::records::{Answer, ClusterRecords};

/// Answers DNS requests for one node.
pub struct Handler {
    records: watch::Receiver<Arc<ClusterRecords>>,
    forwarder: Forwarder,
}

impl Handler {
    /// A handler over the records `records` carries, forwarding through `forwarder`.
    pub fn new(records: watch::Receiver<Arc<ClusterRecords>>, forwarder: Forwarder) -> Self {
        Self { records, forwarder }
    }

    /// The answer to `query`: the cluster's (authoritative), or the
    /// upstream resolvers'.
    pub async fn resolve(&self, query: &Query) -> (Answer, bool) {
        let records = Arc::clone(&self.records.borrow());
        let qtype = query.query_type();
        match records.answer(query.name(), qtype) {
            Some(mut answer) => {
                // An ExternalName's CNAME comes with its target's addresses,
                // as CoreDNS looks them up for A and AAAA questions.
                if let Some(target) = cname_target(&answer.answers, qtype) {
                    let chased = match records.answer(&target, qtype) {
                        Some(local) => local.answers,
                        None => self.forward(Query::query(target, qtype)).await.answers,
                    };
                    answer.answers.extend(chased);
                }
                (answer, true)
            }
            None => (self.forward(query.clone()).await, false),
        }
    }

    async fn forward(&self, query: Query) -> Answer {
        match self.forwarder.forward(query.clone()).await {
            Ok(mut message) => Answer {
                code: message.response_code(),
                answers: message.take_answers(),
                authority: message.take_name_servers(),
                additionals: message
                    .take_additionals()
                    .into_iter()
                    .filter(|r| r.record_type() != RecordType::OPT)
                    .collect(),
            },
            Err(error) => {
                tracing::debug!(name = %query.name(), %error, "forwarding failed");
                Answer {
                    code: ResponseCode::ServFail,
                    ..Answer::default()
                }
            }
        }
    }
}

/// The name to chase when `answers` is a lone CNAME for an address question.
fn cname_target(answers: &[Record], qtype: RecordType) -> Option<Name> {
    match (answers, qtype) {
        ([record], RecordType::A | RecordType::AAAA) => match record.data() {
            RData::CNAME(target) => Some(target.0.clone()),
            _ => None,
        },
        _ => None,
    }
}

#[async_trait::async_trait]
impl RequestHandler for Handler {
    async fn handle_request<R: ResponseHandler>(
        &self,
        request: &Request,
        mut response: R,
    ) -> ResponseInfo {
        let mut builder = MessageResponseBuilder::from_message_request(request);
        if let Some(edns) = request.edns() {
            let mut ours = Edns::new();
            ours.set_max_payload(edns.max_payload().max(512))
                .set_version(0);
            builder.edns(ours);
        }
        let mut header = Header::response_from_request(request.header());
        let answer = match request.request_info() {
            Ok(info)
                if request.op_code() == OpCode::Query
                    && request.message_type() == MessageType::Query =>
            {
                let (answer, authoritative) = self.resolve(info.query.original()).await;
                header.set_authoritative(authoritative);
                answer
            }
            Ok(_) => Answer {
                code: ResponseCode::NotImp,
                ..Answer::default()
            },
            Err(_) => Answer {
                code: ResponseCode::FormErr,
                ..Answer::default()
            },
        };
        header
            .set_recursion_available(true)
            .set_response_code(answer.code);
        let message = builder.build(
            header,
            answer.answers.iter(),
            answer.authority.iter(),
            std::iter::empty(),
            answer.additionals.iter(),
        );
        match response.send_response(message).await {
            Ok(info) => info,
            Err(error) => {
                tracing::debug!(%error, "sending a DNS response failed");
                let mut failed = Header::response_from_request(request.header());
                failed.set_response_code(ResponseCode::ServFail);
                failed.into()
            }
        }
    }
}
