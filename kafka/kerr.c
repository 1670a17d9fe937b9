/*
 * kerr.c - names for Kafka error codes, from the list in kerr.h, for logs.
 */
#include "kerr.h"

const char *kerr_name(int16_t code)
{
	switch (code) {
#define KERR_CASE(name, n) case n: return #name;
	KERR_LIST(KERR_CASE)
#undef KERR_CASE
	}
	return "UNKNOWN";
}
