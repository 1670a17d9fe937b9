/*
 * wal_volume.c - find the WAL's block device on EC2 by its EBS volume id.
 *
 * On Nitro instances EBS volumes are NVMe namespaces whose controller serial
 * is the volume id without its dash ("vol0123456789abcdef0" for
 * vol-0123456789abcdef0).  Device names (/dev/nvme1n1) depend on probe order
 * and can change between boots; the serial does not, so the WAL is found by
 * it (DESIGN.md, "The WAL").
 */
#include <dirent.h>
#include <stdio.h>
#include <string.h>
#include "wal.h"

/* Read a small sysfs file, trimmed of whitespace; 0 or -1. */
static int read_trimmed(const char *path, char *out, size_t cap)
{
	FILE *f = fopen(path, "re");
	size_t n;

	if (!f)
		return -1;
	n = fread(out, 1, cap - 1, f);
	fclose(f);
	out[n] = 0;
	while (n > 0 && (out[n - 1] == '\n' || out[n - 1] == ' ' || out[n - 1] == '\t'))
		out[--n] = 0;
	size_t lead = strspn(out, " \t");
	memmove(out, out + lead, n - lead + 1);
	return 0;
}

int wal_find_volume(const char *sysfs_block, const char *volume, char *path, size_t cap)
{
	char want[64], serial[128], p[512];
	size_t w = 0;
	DIR *d;
	struct dirent *de;
	int found = SL_E_NOTFOUND;

	for (const char *c = volume; *c && w + 1 < sizeof(want); c++)
		if (*c != '-')
			want[w++] = *c;
	want[w] = 0;
	if (strncmp(want, "vol", 3) != 0 || w < 4)
		return SL_E_INVALID;
	d = opendir(sysfs_block);
	if (!d)
		return SL_E_NOTFOUND;
	while ((de = readdir(d)) != NULL) {
		if (strncmp(de->d_name, "nvme", 4) != 0)
			continue;
		snprintf(p, sizeof(p), "%s/%s/device/serial", sysfs_block, de->d_name);
		if (read_trimmed(p, serial, sizeof(serial)) != 0 || strcmp(serial, want) != 0)
			continue;
		snprintf(path, cap, "/dev/%s", de->d_name);
		found = 0;
		break;
	}
	closedir(d);
	return found;
}
