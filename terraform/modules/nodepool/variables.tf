variable "cluster_name" {
  description = "Cluster name: prefixes names and tags resources with berth.dev/cluster."
  type        = string
}

variable "name" {
  description = "The pool's name (a DNS-1123 label), as its NodePool object names it."
  type        = string
}

variable "vpc_id" {
  description = "VPC of the pool's security group."
  type        = string
}

variable "ami_id" {
  description = "AMI the NodePool controller launches the pool's machines from (a GPU image for GPU pools)."
  type        = string
}

variable "instance_types" {
  description = "Instance types in order of preference; the controller tries them in turn."
  type        = list(string)

  validation {
    condition     = length(var.instance_types) > 0
    error_message = "instance_types needs at least one instance type."
  }
}

variable "subnet_ids" {
  description = "Subnets the controller spreads the machines over (the private subnets)."
  type        = list(string)
}

variable "node_security_group_ids" {
  description = "Security groups every node has (the network module's nodes group); the pool's own group is added."
  type        = list(string)
}

variable "key_name" {
  description = "EC2 key pair the machines accept for SSH (debugging; they join with a bootstrap token)."
  type        = string
  default     = null
}

variable "root_volume_size" {
  description = "Root volume size in GiB (gp3, encrypted): images and emptyDir volumes live there."
  type        = number
  default     = 50
}

variable "gpu" {
  description = "Whether the pool's instance types have NVIDIA GPUs (its nodes get the nvidia.com/gpu taint)."
  type        = bool
  default     = false
}

variable "spot" {
  description = "Launch spot instances first, falling back to on-demand when capacity runs out."
  type        = bool
  default     = false
}

variable "iam_policy_arns" {
  description = "Managed policies attached to the pool's role (e.g. AmazonEC2ContainerRegistryReadOnly)."
  type        = list(string)
  default     = []
}

variable "tags" {
  description = "Tags added to every resource (and recorded for the instances the controller launches)."
  type        = map(string)
  default     = {}
}
