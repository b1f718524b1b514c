# The control-plane machines. Terraform only makes them; `berth cluster
# create --from-terraform` installs berth (and etcd) on them over SSH.

locals {
  tags     = merge(var.tags, { "berth.dev/cluster" = var.cluster_name, "berth.dev/role" = "master" })
  lb_count = var.load_balancer ? 1 : 0
}

module "profile" {
  source = "../instance_profile"

  name_prefix     = "${var.cluster_name}-master-"
  iam_policy_arns = var.iam_policy_arns
  tags            = local.tags
}

resource "aws_instance" "master" {
  count                  = var.master_count
  ami                    = var.ami_id
  instance_type          = var.instance_type
  subnet_id              = var.subnet_ids[count.index % length(var.subnet_ids)]
  vpc_security_group_ids = var.security_group_ids
  key_name               = var.key_name
  iam_instance_profile   = module.profile.instance_profile
  monitoring             = true
  ebs_optimized          = true

  metadata_options {
    http_endpoint               = "enabled"
    http_tokens                 = "required"
    http_put_response_hop_limit = 1
  }

  root_block_device {
    volume_type = "gp3"
    volume_size = var.root_volume_size
    encrypted   = true
    kms_key_id  = var.root_volume_kms_key_id
  }

  tags        = merge(local.tags, { Name = "${var.cluster_name}-master-${count.index + 1}" })
  volume_tags = local.tags

  lifecycle {
    ignore_changes = [ami]
  }
}

resource "aws_lb" "api" {
  #checkov:skip=CKV_AWS_91:access logs of a TCP pass-through NLB hold only connection metadata; the VPC flow logs have it
  #checkov:skip=CKV2_AWS_20:TCP pass-through; TLS ends at the API server, which checks client certificates
  #checkov:skip=CKV2_AWS_28:WAF applies to application load balancers, not a TCP network load balancer
  count                            = local.lb_count
  name_prefix                      = "berth-"
  load_balancer_type               = "network"
  internal                         = var.load_balancer_internal
  subnets                          = length(var.load_balancer_subnet_ids) > 0 ? var.load_balancer_subnet_ids : var.subnet_ids
  enable_cross_zone_load_balancing = true
  enable_deletion_protection       = true
  drop_invalid_header_fields       = true
  tags                             = merge(local.tags, { Name = "${var.cluster_name}-api" })
}

resource "aws_lb_target_group" "api" {
  count       = local.lb_count
  name_prefix = "berth-"
  port        = 6443
  protocol    = "TCP"
  vpc_id      = var.vpc_id
  target_type = "instance"

  health_check {
    protocol = "HTTPS"
    port     = "6443"
    path     = "/readyz"
    matcher  = "200-499"
  }

  tags = local.tags
}

resource "aws_lb_target_group_attachment" "api" {
  count            = var.load_balancer ? var.master_count : 0
  target_group_arn = aws_lb_target_group.api[0].arn
  target_id        = aws_instance.master[count.index].id
  port             = 6443
}

resource "aws_lb_listener" "api" {
  #checkov:skip=CKV_AWS_2:TCP pass-through on purpose: TLS ends at the API server (client certificates, its own CA)
  #checkov:skip=CKV_AWS_103:TCP pass-through; the API server sets the TLS version
  count             = local.lb_count
  load_balancer_arn = aws_lb.api[0].arn
  port              = 6443
  protocol          = "TCP"

  default_action {
    type             = "forward"
    target_group_arn = aws_lb_target_group.api[0].arn
  }

  tags = local.tags
}
