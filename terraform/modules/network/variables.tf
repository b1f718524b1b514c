variable "name" {
  description = "Cluster name: prefixes every resource's Name tag."
  type        = string
}

variable "vpc_cidr" {
  description = "The VPC's address range; masters and nodes get their addresses from it."
  type        = string
  default     = "10.0.0.0/16"
}

variable "azs" {
  description = "Availability zones to spread the subnets over (one public and one private subnet in each)."
  type        = list(string)
}

variable "public_subnet_cidrs" {
  description = "One CIDR per AZ for the public subnets (NAT gateways, an internet-facing API load balancer)."
  type        = list(string)
}

variable "private_subnet_cidrs" {
  description = "One CIDR per AZ for the private subnets masters and nodes live in."
  type        = list(string)
}

variable "single_nat_gateway" {
  description = "One NAT gateway for every private subnet (cheaper) instead of one per AZ (survives an AZ outage)."
  type        = bool
  default     = true
}

variable "ssh_allowed_cidrs" {
  description = "Where SSH (22) to masters and nodes may come from: the operator's address or a bastion. Empty: no SSH from outside the cluster's security groups."
  type        = list(string)
  default     = []

  validation {
    condition     = !contains(var.ssh_allowed_cidrs, "0.0.0.0/0")
    error_message = "SSH from 0.0.0.0/0 is refused: name the operator's or the bastion's address."
  }
}

variable "api_allowed_cidrs" {
  description = "Where the Kubernetes API (6443) on the masters may be reached from, besides the cluster itself."
  type        = list(string)
  default     = []
}

variable "vxlan_port" {
  description = "UDP port of berth's VXLAN overlay (network_mode = \"vxlan\"): pod traffic between machines."
  type        = number
  default     = 8472
}

variable "flow_log_retention_days" {
  description = "How long the VPC flow logs are kept in CloudWatch Logs."
  type        = number
  default     = 365
}

variable "tags" {
  description = "Tags added to every resource."
  type        = map(string)
  default     = {}
}
