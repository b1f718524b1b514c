# Security groups for masters and nodes, with one rule resource per opening so
# each has its own description. Pod traffic crosses machines inside VXLAN
# (UDP), so nothing here opens the pod or service ranges.

resource "aws_security_group" "masters" {
  #checkov:skip=CKV2_AWS_5:attached to the master instances by the masters module
  name_prefix = "${var.name}-masters-"
  description = "berth ${var.name}: masters (API server, etcd)"
  vpc_id      = aws_vpc.this.id
  tags        = merge(local.tags, { Name = "${var.name}-masters" })

  lifecycle {
    create_before_destroy = true
  }
}

resource "aws_security_group" "nodes" {
  #checkov:skip=CKV2_AWS_5:attached to the node instances the NodePool controller launches
  name_prefix = "${var.name}-nodes-"
  description = "berth ${var.name}: nodes (agents and their pods)"
  vpc_id      = aws_vpc.this.id
  tags        = merge(local.tags, { Name = "${var.name}-nodes" })

  lifecycle {
    create_before_destroy = true
  }
}

locals {
  groups = {
    masters = aws_security_group.masters.id
    nodes   = aws_security_group.nodes.id
  }

  # Openings between the cluster's own groups: "<to>/<from>/<what>".
  group_rules = merge(
    {
      for pair in setproduct(keys(local.groups), keys(local.groups)) :
      "${pair[0]}/${pair[1]}/vxlan" => {
        to = pair[0], from = pair[1], protocol = "udp", port = var.vxlan_port, to_port = var.vxlan_port
        description = "VXLAN pod traffic from ${pair[1]}"
      }
    },
    {
      for pair in setproduct(keys(local.groups), keys(local.groups)) :
      "${pair[0]}/${pair[1]}/agent" => {
        to = pair[0], from = pair[1], protocol = "tcp", port = 10250, to_port = 10250
        description = "agent (kubelet) API from ${pair[1]}"
      }
    },
    {
      for from in keys(local.groups) :
      "masters/${from}/api" => {
        to = "masters", from = from, protocol = "tcp", port = 6443, to_port = 6443
        description = "Kubernetes API from ${from}"
      }
    },
    {
      "masters/masters/etcd" = {
        to = "masters", from = "masters", protocol = "tcp", port = 2379, to_port = 2380
        description = "etcd client and peer traffic between masters"
      }
    },
  )

  # Openings from address ranges outside the groups.
  cidr_rules = merge(
    {
      for pair in setproduct(keys(local.groups), var.ssh_allowed_cidrs) :
      "${pair[0]}/ssh/${pair[1]}" => {
        to = pair[0], cidr = pair[1], protocol = "tcp", port = 22, to_port = 22
        description = "SSH from ${pair[1]} (berth cluster create)"
      }
    },
    {
      for cidr in distinct(concat([var.vpc_cidr], var.api_allowed_cidrs)) :
      "masters/api/${cidr}" => {
        to = "masters", cidr = cidr, protocol = "tcp", port = 6443, to_port = 6443
        description = "Kubernetes API from ${cidr} (load balancer health checks, clients)"
      }
    },
  )
}

resource "aws_vpc_security_group_ingress_rule" "from_group" {
  for_each                     = local.group_rules
  security_group_id            = local.groups[each.value.to]
  referenced_security_group_id = local.groups[each.value.from]
  ip_protocol                  = each.value.protocol
  from_port                    = each.value.port
  to_port                      = each.value.to_port
  description                  = each.value.description
  tags                         = local.tags
}

resource "aws_vpc_security_group_ingress_rule" "from_cidr" {
  for_each          = local.cidr_rules
  security_group_id = local.groups[each.value.to]
  cidr_ipv4         = each.value.cidr
  ip_protocol       = each.value.protocol
  from_port         = each.value.port
  to_port           = each.value.to_port
  description       = each.value.description
  tags              = local.tags
}

# Machines fetch packages and images through the NAT gateway.
resource "aws_vpc_security_group_egress_rule" "out" {
  for_each          = local.groups
  security_group_id = each.value
  cidr_ipv4         = "0.0.0.0/0"
  ip_protocol       = "-1"
  description       = "anything out (packages, images, AWS APIs) through the NAT gateway"
  tags              = local.tags
}
