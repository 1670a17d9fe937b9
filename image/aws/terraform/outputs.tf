output "instance_id" {
  value = aws_instance.sluice.id
}

output "bootstrap_servers" {
  description = "What Kafka clients in client_cidrs connect to."
  value       = "${aws_network_interface.sluice.private_ip}:9092"
}

output "wal_volume_id" {
  value = aws_ebs_volume.wal.id
}

output "bucket" {
  value = aws_s3_bucket.objects.id
}

output "console" {
  description = "The appliance's serial console (its log)."
  value       = "aws ec2 get-console-output --latest --output text --instance-id ${aws_instance.sluice.id}"
}
