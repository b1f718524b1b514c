# What a node pool's machines need before any exists: an IAM role and
# instance profile and a security group of the pool's own. berth's NodePool
# controller launches (and terminates) the instances itself from the inputs
# this module outputs, so there is no autoscaling group here.

locals {
  tags = merge(var.tags, { "berth.dev/cluster" = var.cluster_name, "berth.dev/pool" = var.name })
}

module "profile" {
  source = "../instance_profile"

  name_prefix     = "${var.cluster_name}-pool-${var.name}-"
  iam_policy_arns = var.iam_policy_arns
  tags            = local.tags
}

# The pool's own group: empty of openings, for rules that concern only this
# pool (a GPU pool's exporters, a public ingress pool's ports).
resource "aws_security_group" "this" {
  #checkov:skip=CKV2_AWS_5:attached to the instances the NodePool controller launches
  name_prefix = "${var.cluster_name}-pool-${var.name}-"
  description = "berth ${var.cluster_name}: pool ${var.name}"
  vpc_id      = var.vpc_id
  tags        = merge(local.tags, { Name = "${var.cluster_name}-pool-${var.name}" })

  lifecycle {
    create_before_destroy = true
  }
}
