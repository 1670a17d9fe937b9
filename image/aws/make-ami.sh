#!/bin/sh
# image/aws/make-ami.sh - build/sluice.img to an AMI, with awscli.
#
#   sh image/aws/make-ami.sh --bucket BUCKET [--name NAME] [--image FILE]
#                            [--key S3KEY] [--role ROLE] [--keep-upload]
#
# Region and credentials come from awscli's usual places (AWS_REGION or
# AWS_DEFAULT_REGION, AWS_PROFILE, ~/.aws/).  Steps:
#
#   1. aws s3 cp IMAGE s3://BUCKET/KEY
#   2. aws ec2 import-snapshot, format RAW: VM Import copies the disk into an
#      EBS snapshot without looking inside it (import-image would, and would
#      refuse a disk with no distribution on it).  It needs the service role
#      "vmimport" (or --role ROLE) allowed to read the bucket: README.md says how.
#   3. wait for the import task, printing its progress (minutes, typically)
#   4. aws ec2 register-image: x86_64, hvm, the snapshot as the root volume
#      (/dev/xvda, gp3, deleted with the instance), --boot-mode uefi (the disk
#      has only an EFI system partition), --ena-support (the image loads the
#      ena driver; Nitro instance types require the flag), --imds-support v2.0
#      (instances must use IMDSv2 tokens, which is all the appliance speaks)
#   5. delete the uploaded object unless --keep-upload
#
# Prints the AMI id as its last line.
set -eu

bucket=""
name="sluice-$(date -u +%Y%m%d-%H%M%S)"
image="build/sluice.img"
key=""
role=""
keep=0
timeout_s=${IMPORT_TIMEOUT:-3600}

say() { echo "make-ami: $*" >&2; }
die() { echo "make-ami: error: $*" >&2; exit 1; }
usage() {
	echo "usage: $0 --bucket BUCKET [--name NAME] [--image FILE] [--key S3KEY] [--role ROLE] [--keep-upload]" >&2
	exit 2
}

while [ $# -gt 0 ]; do
	case "$1" in
	--bucket) [ $# -ge 2 ] || usage; bucket=$2; shift 2 ;;
	--name) [ $# -ge 2 ] || usage; name=$2; shift 2 ;;
	--image) [ $# -ge 2 ] || usage; image=$2; shift 2 ;;
	--key) [ $# -ge 2 ] || usage; key=$2; shift 2 ;;
	--role) [ $# -ge 2 ] || usage; role=$2; shift 2 ;;
	--keep-upload) keep=1; shift ;;
	*) usage ;;
	esac
done
[ -n "$bucket" ] || usage
[ -f "$image" ] || die "$image not found (make image)"
command -v aws >/dev/null 2>&1 || die "awscli (aws) is not installed"
key=${key:-images/$name.img}

say "uploading $image ($(wc -c <"$image" | tr -d ' ') bytes) to s3://$bucket/$key"
aws s3 cp --only-show-errors "$image" "s3://$bucket/$key"

say "importing it as an EBS snapshot (format RAW)"
set -- --description "$name" \
	--disk-container "Description=$name,Format=RAW,UserBucket={S3Bucket=$bucket,S3Key=$key}"
if [ -n "$role" ]; then
	set -- "$@" --role-name "$role"
fi
task=$(aws ec2 import-snapshot "$@" --query ImportTaskId --output text)
say "import task $task"

start=$(date +%s)
snapshot=""
last=""
while :; do
	# status, progress (percent, absent when done), snapshot id, message
	line=$(aws ec2 describe-import-snapshot-tasks --import-task-ids "$task" \
		--query 'ImportSnapshotTasks[0].SnapshotTaskDetail.[Status,Progress,SnapshotId,StatusMessage]' \
		--output text)
	status=$(printf '%s' "$line" | cut -f1)
	if [ "$line" != "$last" ]; then
		say "  $(printf '%s' "$line" | tr '\t' ' ')"
		last=$line
	fi
	case "$status" in
	completed)
		snapshot=$(printf '%s' "$line" | cut -f3)
		break
		;;
	deleting | deleted)
		die "import task $task failed: $(printf '%s' "$line" | cut -f4)"
		;;
	esac
	if [ $(($(date +%s) - start)) -gt "$timeout_s" ]; then
		die "import task $task still '$status' after $timeout_s s"
	fi
	sleep 15
done
case "$snapshot" in
snap-*) ;;
*) die "import task $task completed without a snapshot id ('$snapshot')" ;;
esac
say "snapshot $snapshot"

ami=$(aws ec2 register-image \
	--name "$name" \
	--description "Sluice appliance ($name)" \
	--architecture x86_64 \
	--virtualization-type hvm \
	--root-device-name /dev/xvda \
	--block-device-mappings "DeviceName=/dev/xvda,Ebs={SnapshotId=$snapshot,VolumeType=gp3,DeleteOnTermination=true}" \
	--boot-mode uefi \
	--ena-support \
	--imds-support v2.0 \
	--query ImageId --output text)

if [ "$keep" -eq 0 ]; then
	aws s3 rm --only-show-errors "s3://$bucket/$key" || say "could not delete s3://$bucket/$key"
fi
say "registered $ami ($name)"
echo "$ami"
