variable "region" {
  description = "AWS region of the AMI, the bucket and the instance."
  type        = string
}

variable "ami_id" {
  description = "The AMI printed by image/aws/make-ami.sh."
  type        = string
}

variable "subnet_id" {
  description = "Subnet to launch in; it needs a route to S3 (a gateway endpoint or a NAT)."
  type        = string
}

variable "bucket_name" {
  description = "Bucket for Sluice's objects, created here; the instance may use only this one."
  type        = string
}

variable "name" {
  description = "Name and prefix of what is created."
  type        = string
  default     = "sluice"
}

variable "instance_type" {
  description = "A Nitro type (ENA and NVMe): the image boots with UEFI only."
  type        = string
  default     = "m6i.large"
}

variable "client_cidrs" {
  description = "Addresses allowed to reach Kafka on port 9092."
  type        = list(string)
}

variable "wal_size_gib" {
  description = "Size of the WAL volume: what may wait for upload to S3."
  type        = number
  default     = 20
}

variable "wal_iops" {
  description = "Provisioned IOPS of the gp3 WAL volume."
  type        = number
  default     = 3000
}

variable "wal_throughput" {
  description = "Provisioned throughput of the gp3 WAL volume, MiB/s."
  type        = number
  default     = 125
}

variable "properties_file" {
  description = "Sluice configuration sent as user-data; Terraform appends the listener, WAL volume and bucket."
  type        = string
  default     = "sluice.properties"
}
