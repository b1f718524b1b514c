variable "name_prefix" {
  description = "Prefix of the role's and the instance profile's names (AWS appends a unique suffix)."
  type        = string
}

variable "iam_policy_arns" {
  description = "Managed policies attached to the role."
  type        = list(string)
  default     = []
}

variable "tags" {
  description = "Tags of the role and the instance profile."
  type        = map(string)
  default     = {}
}
