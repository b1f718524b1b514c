# What `berth cluster create --from-terraform` reads (see terraform/README.md):
# cluster_name, masters, datastore, network_mode, api_endpoint and the ssh_*
# outputs become cluster.toml; the rest is for the NodePool controller and people.

output "cluster_name" {
  description = "The cluster's name."
  value       = var.cluster_name
}

output "region" {
  description = "The AWS region."
  value       = var.region
}

output "berth_binary_url" {
  description = "Where node pool instances download the berth executable."
  value       = var.berth_binary_url
}

output "masters" {
  description = "The masters: name, host (reached over SSH), private_ip, instance_id."
  value       = module.masters.machines
}

output "datastore" {
  description = "sqlite for one master, etcd for three or five."
  value       = module.masters.datastore
}

output "network_mode" {
  description = "Pod traffic crosses machines in VXLAN: the VPC does not route pod addresses."
  value       = "vxlan"
}

output "api_endpoint" {
  description = "The API load balancer's DNS name (null without one: the first master)."
  value       = module.masters.api_endpoint
}

output "ssh_user" {
  description = "The AMI's login user."
  value       = var.ssh_user
}

output "ssh_key_name" {
  description = "The EC2 key pair of every machine."
  value       = var.ssh_key_name
}

output "ssh_key_file" {
  description = "The key pair's private key on the operator's machine (null: the ssh-agent)."
  value       = var.ssh_key_file
}

output "ssh_jump_host" {
  description = "The bastion in front of the private subnets (null: none)."
  value       = var.ssh_jump_host
}

output "ssh_host_key_policy" {
  description = "Fresh instances have host keys nobody has seen yet: trust them on first use, refuse a changed one later."
  value       = "accept-new"
}

output "ssh_pools" {
  description = "Pools of machines Terraform made that join over SSH (none here: the NodePool controller launches pool machines)."
  value       = {}
}

output "vpc_id" {
  description = "The VPC."
  value       = module.network.vpc_id
}

output "subnets" {
  description = "Public and private subnet ids, one per AZ."
  value = {
    public  = module.network.public_subnet_ids
    private = module.network.private_subnet_ids
  }
}

output "security_groups" {
  description = "Security groups of the masters and of every node."
  value = {
    masters = module.network.masters_security_group_id
    nodes   = module.network.nodes_security_group_id
  }
}

output "node_pools" {
  description = "Per pool, what the NodePool controller launches machines with (AMI, instance types, subnets, security groups, instance profile, key pair, root volume, gpu, spot, tags)."
  value       = { for name, pool in module.pool : name => pool.pool }
}
