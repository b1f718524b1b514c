output "machines" {
  description = "The masters, in order: name (the Node name), host (the address berth reaches over SSH), private_ip, instance_id."
  value = [
    for master in aws_instance.master : {
      name        = master.tags["Name"]
      host        = master.private_ip
      private_ip  = master.private_ip
      instance_id = master.id
    }
  ]
}

output "api_endpoint" {
  description = "What the admin kubeconfig names: the load balancer's DNS name, else api_dns_name, else null (the first master)."
  value       = var.load_balancer ? aws_lb.api[0].dns_name : var.api_dns_name
}

output "datastore" {
  description = "The datastore that fits master_count: sqlite for 1, etcd for 3 or 5."
  value       = var.master_count == 1 ? "sqlite" : "etcd"
}

output "role_name" {
  description = "IAM role of the masters, for attaching more policies."
  value       = module.profile.role_name
}

output "instance_profile" {
  description = "IAM instance profile of the masters."
  value       = module.profile.instance_profile
}
