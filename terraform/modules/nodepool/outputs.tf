output "pool" {
  description = "What the NodePool controller launches the pool's machines with: AMI, instance types in order, subnets, security groups, instance profile, key pair, root volume, gpu, spot and tags. Instances must require IMDSv2 and encrypt the root volume."
  value = {
    name               = var.name
    ami                = var.ami_id
    instance_types     = var.instance_types
    subnet_ids         = var.subnet_ids
    security_group_ids = concat(var.node_security_group_ids, [aws_security_group.this.id])
    instance_profile   = module.profile.instance_profile
    key_name           = var.key_name
    root_volume_size   = var.root_volume_size
    gpu                = var.gpu
    spot               = var.spot
    tags               = local.tags
  }
}

output "role_name" {
  description = "IAM role of the pool's machines, for attaching more policies."
  value       = module.profile.role_name
}
