variable "cluster_name" {
  description = "Cluster name: prefixes the instances' names and tags them with berth.dev/cluster."
  type        = string
}

variable "master_count" {
  description = "How many masters: 1 (datastore sqlite) or 3 or 5 (datastore etcd)."
  type        = number
  default     = 3

  validation {
    condition     = contains([1, 3, 5], var.master_count)
    error_message = "master_count must be 1, 3 or 5: berth runs sqlite on one master and etcd on an odd number."
  }
}

variable "ami_id" {
  description = "AMI of the masters: a Debian or Ubuntu image with systemd and SSH (berth installs itself and etcd)."
  type        = string
}

variable "instance_type" {
  description = "EC2 instance type of the masters."
  type        = string
  default     = "m6i.large"
}

variable "subnet_ids" {
  description = "Subnets the masters go in, round-robin (private subnets in several AZs)."
  type        = list(string)
}

variable "security_group_ids" {
  description = "Security groups of the masters (the network module's masters group)."
  type        = list(string)
}

variable "key_name" {
  description = "EC2 key pair whose public key the instances accept for SSH."
  type        = string
}

variable "root_volume_size" {
  description = "Root volume size in GiB (gp3, encrypted): berth's data_dir and etcd live there."
  type        = number
  default     = 50
}

variable "root_volume_kms_key_id" {
  description = "KMS key for the root volumes; null uses the account's default EBS key."
  type        = string
  default     = null
}

variable "iam_policy_arns" {
  description = "Managed policies attached to the masters' role (e.g. AmazonSSMManagedInstanceCore)."
  type        = list(string)
  default     = []
}

variable "load_balancer" {
  description = "Put a network load balancer on 6443 in front of the masters; its DNS name becomes the API endpoint."
  type        = bool
  default     = true
}

variable "load_balancer_internal" {
  description = "Whether the API load balancer is internal (reachable from the VPC and its peers only)."
  type        = bool
  default     = true
}

variable "load_balancer_subnet_ids" {
  description = "Subnets of the load balancer (public ones for an internet-facing one); default: subnet_ids."
  type        = list(string)
  default     = []
}

variable "vpc_id" {
  description = "VPC of the load balancer's target group."
  type        = string
}

variable "api_dns_name" {
  description = "A DNS name with one record per master to use as the API endpoint instead of a load balancer; null for none."
  type        = string
  default     = null
}

variable "tags" {
  description = "Tags added to every resource."
  type        = map(string)
  default     = {}
}
