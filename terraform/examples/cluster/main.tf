# A whole berth cluster's AWS side: network, masters behind an internal NLB,
# and the IAM and security groups of each node pool. Then:
#   terraform apply
#   terraform output -json > outputs.json
#   berth cluster create --from-terraform outputs.json

provider "aws" {
  region = var.region

  default_tags {
    tags = var.tags
  }
}

module "network" {
  source = "../../modules/network"

  name                 = var.cluster_name
  vpc_cidr             = var.vpc_cidr
  azs                  = var.azs
  public_subnet_cidrs  = var.public_subnet_cidrs
  private_subnet_cidrs = var.private_subnet_cidrs
  ssh_allowed_cidrs    = var.ssh_allowed_cidrs
  api_allowed_cidrs    = var.api_allowed_cidrs
}

module "masters" {
  source = "../../modules/masters"

  cluster_name       = var.cluster_name
  master_count       = var.master_count
  ami_id             = var.ami_id
  instance_type      = var.master_instance_type
  subnet_ids         = module.network.private_subnet_ids
  security_group_ids = [module.network.masters_security_group_id]
  key_name           = var.ssh_key_name
  vpc_id             = module.network.vpc_id
  load_balancer      = var.api_load_balancer
}

module "pool" {
  source   = "../../modules/nodepool"
  for_each = var.pools

  cluster_name            = var.cluster_name
  name                    = each.key
  vpc_id                  = module.network.vpc_id
  ami_id                  = coalesce(each.value.ami_id, var.ami_id)
  instance_types          = each.value.instance_types
  subnet_ids              = module.network.private_subnet_ids
  node_security_group_ids = [module.network.nodes_security_group_id]
  key_name                = var.ssh_key_name
  root_volume_size        = each.value.root_volume_size
  gpu                     = each.value.gpu
  spot                    = each.value.spot
}
