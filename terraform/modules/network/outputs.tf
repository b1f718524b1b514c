output "vpc_id" {
  description = "The VPC's id."
  value       = aws_vpc.this.id
}

output "vpc_cidr" {
  description = "The VPC's address range."
  value       = aws_vpc.this.cidr_block
}

output "public_subnet_ids" {
  description = "Public subnets, one per AZ in the order of var.azs."
  value       = aws_subnet.public[*].id
}

output "private_subnet_ids" {
  description = "Private subnets, one per AZ in the order of var.azs: where masters and nodes go."
  value       = aws_subnet.private[*].id
}

output "masters_security_group_id" {
  description = "Security group for the masters."
  value       = aws_security_group.masters.id
}

output "nodes_security_group_id" {
  description = "Security group for every node, whatever its pool."
  value       = aws_security_group.nodes.id
}

output "flow_log_group" {
  description = "CloudWatch Logs group holding the VPC flow logs."
  value       = aws_cloudwatch_log_group.flow_logs.name
}
