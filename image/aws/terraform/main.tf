# A Sluice appliance on EC2: the AMI from image/aws/make-ami.sh, a gp3 WAL
# volume, an instance profile allowed on one bucket, and user-data made from
# a properties file.  See README.md ("The AMI") for the walk-through.

terraform {
  required_version = ">= 1.3"
  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = ">= 5.0"
    }
  }
}

provider "aws" {
  region = var.region
}

data "aws_subnet" "this" {
  id = var.subnet_id
}

# ---- objects: one bucket, and a role that may use only it

resource "aws_s3_bucket" "objects" {
  bucket = var.bucket_name
}

resource "aws_s3_bucket_public_access_block" "objects" {
  bucket                  = aws_s3_bucket.objects.id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
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

data "aws_iam_policy_document" "objects" {
  statement {
    actions   = ["s3:ListBucket", "s3:GetBucketLocation"]
    resources = [aws_s3_bucket.objects.arn]
  }
  statement {
    actions = [
      "s3:GetObject",
      "s3:PutObject",
      "s3:DeleteObject",
      "s3:AbortMultipartUpload",
      "s3:ListMultipartUploadParts",
    ]
    resources = ["${aws_s3_bucket.objects.arn}/*"]
  }
}

resource "aws_iam_role" "sluice" {
  name_prefix        = "${var.name}-"
  assume_role_policy = data.aws_iam_policy_document.assume.json
}

resource "aws_iam_role_policy" "objects" {
  name   = "objects"
  role   = aws_iam_role.sluice.id
  policy = data.aws_iam_policy_document.objects.json
}

resource "aws_iam_instance_profile" "sluice" {
  name_prefix = "${var.name}-"
  role        = aws_iam_role.sluice.name
}

# ---- network: Kafka from the clients' range; out to S3 and the metadata service

resource "aws_security_group" "sluice" {
  name_prefix = "${var.name}-"
  vpc_id      = data.aws_subnet.this.vpc_id

  ingress {
    description = "Kafka"
    from_port   = 9092
    to_port     = 9092
    protocol    = "tcp"
    cidr_blocks = var.client_cidrs
  }

  egress {
    description = "S3 over HTTPS, DNS"
    from_port   = 0
    to_port     = 0
    protocol    = "-1"
    cidr_blocks = ["0.0.0.0/0"]
  }
}

# The interface exists before the instance, so its address can go into the
# user-data as the advertised listener.
resource "aws_network_interface" "sluice" {
  subnet_id       = var.subnet_id
  security_groups = [aws_security_group.sluice.id]
}

# ---- the WAL: its own volume, found by the appliance by its id (the NVMe
# serial), kept when the instance is replaced so a new one recovers it.

resource "aws_ebs_volume" "wal" {
  availability_zone = data.aws_subnet.this.availability_zone
  type              = "gp3"
  size              = var.wal_size_gib
  iops              = var.wal_iops
  throughput        = var.wal_throughput
  tags = {
    Name = "${var.name}-wal"
  }
}

locals {
  # The operator's file, then what only Terraform knows.
  user_data = join("", [
    file(var.properties_file),
    "\n# ---- added by Terraform\n",
    "advertised.listeners=PLAINTEXT://${aws_network_interface.sluice.private_ip}:9092\n",
    "sluice.wal.volume=${aws_ebs_volume.wal.id}\n",
    "sluice.objects.url=s3://${aws_s3_bucket.objects.id}?region=${var.region}\n",
  ])
}

resource "aws_instance" "sluice" {
  ami                  = var.ami_id
  instance_type        = var.instance_type
  iam_instance_profile = aws_iam_instance_profile.sluice.name
  user_data            = local.user_data

  network_interface {
    network_interface_id = aws_network_interface.sluice.id
    device_index         = 0
  }

  metadata_options {
    http_endpoint               = "enabled"
    http_tokens                 = "required"
    http_put_response_hop_limit = 1
  }

  # The root volume is the image: the UKI on an EFI system partition.
  root_block_device {
    volume_type = "gp3"
  }

  tags = {
    Name = var.name
  }
}

# Attached after launch: the appliance waits for the volume to appear.
# Stopping the instance first (the ACPI power button: the broker flushes and
# powers off) means a destroy never pulls the WAL from under a running broker.
resource "aws_volume_attachment" "wal" {
  device_name                    = "/dev/sdf"
  volume_id                      = aws_ebs_volume.wal.id
  instance_id                    = aws_instance.sluice.id
  stop_instance_before_detaching = true
}
