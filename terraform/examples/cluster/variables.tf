variable "region" {
  description = "AWS region to build the cluster in."
  type        = string
  default     = "eu-west-1"
}

variable "cluster_name" {
  description = "Cluster name, a DNS-1123 label: cluster.toml's name and every resource's prefix."
  type        = string
  default     = "prod"
}

variable "azs" {
  description = "Availability zones (masters and nodes are spread over them)."
  type        = list(string)
  default     = ["eu-west-1a", "eu-west-1b", "eu-west-1c"]
}

variable "vpc_cidr" {
  description = "The VPC's address range."
  type        = string
  default     = "10.0.0.0/16"
}

variable "public_subnet_cidrs" {
  description = "Public subnets, one per AZ."
  type        = list(string)
  default     = ["10.0.0.0/24", "10.0.1.0/24", "10.0.2.0/24"]
}

variable "private_subnet_cidrs" {
  description = "Private subnets, one per AZ (masters and nodes)."
  type        = list(string)
  default     = ["10.0.10.0/24", "10.0.11.0/24", "10.0.12.0/24"]
}

variable "ssh_allowed_cidrs" {
  description = "Where SSH may come from (the bastion's or the operator's address); never 0.0.0.0/0."
  type        = list(string)
  default     = []
}

variable "api_allowed_cidrs" {
  description = "Where the Kubernetes API may be reached from besides the VPC."
  type        = list(string)
  default     = []
}

variable "ami_id" {
  description = "AMI for masters and pools without their own (Debian 12 or Ubuntu 24.04 with systemd)."
  type        = string
}

variable "berth_binary_url" {
  description = "Where node pool instances download the berth executable at first boot (https); required when pools is not empty."
  type        = string
  default     = null
}

variable "ssh_user" {
  description = "The AMI's login user (admin on Debian, ubuntu on Ubuntu)."
  type        = string
  default     = "admin"
}

variable "ssh_key_name" {
  description = "EC2 key pair the machines accept."
  type        = string
}

variable "ssh_key_file" {
  description = "Path on the operator's machine of the key pair's private key; null: berth uses the ssh-agent."
  type        = string
  default     = null
}

variable "ssh_jump_host" {
  description = "Bastion berth reaches the private subnets through, [user@]host[:port]; null when this machine is inside the VPC (VPN, peering)."
  type        = string
  default     = null
}

variable "master_count" {
  description = "Masters: 1 (sqlite) or 3 or 5 (etcd)."
  type        = number
  default     = 3
}

variable "master_instance_type" {
  description = "Instance type of the masters."
  type        = string
  default     = "m6i.large"
}

variable "api_load_balancer" {
  description = "Put an internal network load balancer in front of the masters' API."
  type        = bool
  default     = true
}

variable "pools" {
  description = "Node pools the NodePool controller launches machines for, by name."
  type = map(object({
    instance_types   = list(string)
    ami_id           = optional(string)
    gpu              = optional(bool, false)
    spot             = optional(bool, false)
    root_volume_size = optional(number, 50)
  }))
  default = {
    cpu = { instance_types = ["m6i.xlarge", "m6a.xlarge"] }
    gpu = { instance_types = ["g5.xlarge", "g5.2xlarge"], gpu = true, root_volume_size = 100 }
  }
}

variable "tags" {
  description = "Tags added to every resource."
  type        = map(string)
  default     = {}
}
