# What a node pool's machines need before any exists: an IAM role and
# instance profile and a security group of the pool's own. berth's NodePool
# controller launches (and terminates) the instances itself from the inputs
# this module outputs, so there is no autoscaling group here.

locals {
  tags = merge(var.tags, { "berth.dev/cluster" = var.cluster_name, "berth.dev/pool" = var.name })
}

data "aws_iam_policy_document" "assume" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["ec2.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "this" {
  name_prefix        = "${var.cluster_name}-pool-${var.name}-"
  assume_role_policy = data.aws_iam_policy_document.assume.json
  tags               = local.tags
}

resource "aws_iam_role_policy_attachment" "extra" {
  for_each   = toset(var.iam_policy_arns)
  role       = aws_iam_role.this.name
  policy_arn = each.value
}

resource "aws_iam_instance_profile" "this" {
  name_prefix = "${var.cluster_name}-pool-${var.name}-"
  role        = aws_iam_role.this.name
  tags        = local.tags
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
