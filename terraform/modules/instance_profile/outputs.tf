output "role_name" {
  description = "The role's name, for attaching more policies."
  value       = aws_iam_role.this.name
}

output "instance_profile" {
  description = "The instance profile's name, as RunInstances takes it."
  value       = aws_iam_instance_profile.this.name
}
