/* bootfix/nvram.c - the OVMF variable store file: parse it as hostile input, add, replace
 * and delete variables the way edk2's variable driver does, and write Boot#### + BootOrder
 * load options built with libefiboot. Layout: nvram-format.h; facts: bootfix.md §1-§2. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <efivar/efivar.h>
#include <efivar/efiboot.h>

#include "bootfix/bootfix.h"
#include "bootfix/nvram-format.h"
#include "include/byteorder.h"
#include "partition/partition.h"
#include "vhdx/vdisk.h"

/* UEFI 2.10 §3.1.3; the efivar headers do not define it (bootfix.md §2.2). */
#define LOAD_OPTION_ACTIVE 0x00000001u
#define BOOT_VAR_ATTRIBUTES (NV_ATTR_NON_VOLATILE | NV_ATTR_BOOTSERVICE_ACCESS | \
			     NV_ATTR_RUNTIME_ACCESS)
/* A store file is 128 KiB or 528 KiB; anything far larger is not one. */
#define NVRAM_MAX_FILE_BYTES (64u << 20)
#define NVRAM_MAX_PATH_CHARS 255u

const uint8_t nvram_global_guid[16] = NV_GUID_GLOBAL_VARIABLE;
static const uint8_t guid_nv_data_fv[16] = NV_GUID_SYSTEM_NV_DATA_FV;
static const uint8_t guid_auth_variable[16] = NV_GUID_AUTH_VARIABLE;
static const uint8_t guid_variable[16] = NV_GUID_VARIABLE;
static const uint8_t guid_working_block[16] = NV_GUID_WORKING_BLOCK;

/* One variable header found in the store, whatever its state. */
struct nvram_slot {
	struct nvram_var var;
	uint32_t offset;  /* of its header */
	uint32_t bytes;   /* header + name + data, without the pad */
	uint8_t state;
};

struct nvram {
	uint8_t *image;
	size_t bytes;
	uint32_t vars_offset;    /* first variable header */
	uint32_t store_end;      /* end of the variable store region */
	uint32_t free_offset;    /* first byte after the last variable header's pad */
	uint32_t max_var_bytes;  /* cap for header + name + data when reading */
	uint32_t max_new_bytes;  /* the same when writing (PcdMaxVariableSize) */
	size_t n_slots;
	struct nvram_slot *slots;
	size_t n_live;
	struct nvram_var *live;
	uint32_t *live_slot;     /* index into slots of live[i] */
};

static uint32_t align_up4(uint64_t v)
{
	return (uint32_t)((v + NV_VAR_ALIGN - 1) & ~(uint64_t)(NV_VAR_ALIGN - 1));
}

static bool all_ff(const uint8_t *p, size_t n, size_t *first_other)
{
	for (size_t i = 0; i < n; i++) {
		if (p[i] != 0xFF) {
			*first_other = i;
			return false;
		}
	}
	return true;
}

/* ---------------- UCS-2 names ---------------- */

static int put_utf8(uint16_t u, char *out, size_t size, size_t *len)
{
	size_t n = u < 0x80 ? 1 : u < 0x800 ? 2 : 3;

	if (*len + n >= size)
		return -1;
	if (n == 1) {
		out[(*len)++] = (char)u;
	} else if (n == 2) {
		out[(*len)++] = (char)(0xC0 | u >> 6);
		out[(*len)++] = (char)(0x80 | (u & 0x3F));
	} else {
		out[(*len)++] = (char)(0xE0 | u >> 12);
		out[(*len)++] = (char)(0x80 | ((u >> 6) & 0x3F));
		out[(*len)++] = (char)(0x80 | (u & 0x3F));
	}
	return 0;
}

/* units UCS-2 code units (the last one the NUL) -> NUL-terminated UTF-8. -1 if a NUL comes
 * early, the last unit is not NUL, or out is too small. */
static int ucs2_to_utf8(const uint8_t *p, size_t units, char *out, size_t size)
{
	size_t len = 0;

	if (units == 0 || get_le16(p + 2 * (units - 1)) != 0)
		return -1;
	for (size_t i = 0; i + 1 < units; i++) {
		uint16_t u = get_le16(p + 2 * i);
		if (u == 0 || put_utf8(u, out, size, &len) < 0)
			return -1;
	}
	out[len] = '\0';
	return 0;
}

/* NUL-terminated UTF-8 (BMP only) -> UCS-2 with its NUL; returns the code units written
 * including the NUL, or -1 for invalid UTF-8 or too long a name. */
static int utf8_to_ucs2(const char *s, uint16_t *out, size_t max_units)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t n = 0;

	while (*p) {
		uint32_t c;
		int extra;
		if (*p < 0x80) { c = *p; extra = 0; }
		else if ((*p & 0xE0) == 0xC0) { c = *p & 0x1F; extra = 1; }
		else if ((*p & 0xF0) == 0xE0) { c = *p & 0x0F; extra = 2; }
		else return -1;
		p++;
		for (int i = 0; i < extra; i++, p++) {
			if ((*p & 0xC0) != 0x80)
				return -1;
			c = c << 6 | (*p & 0x3F);
		}
		if (n + 1 >= max_units || (c >= 0xD800 && c < 0xE000))
			return -1;
		out[n++] = (uint16_t)c;
	}
	out[n++] = 0;
	return (int)n;
}

/* ---------------- validation: FV header, store header, FTW ---------------- */

static int check_block_map(const uint8_t *b, uint32_t header_length, uint64_t fv_length)
{
	uint64_t total = 0;

	for (uint32_t i = 0; i < NV_FV_MAX_BLOCK_MAP; i++) {
		uint32_t off = NV_FV(block_map) + i * NV_FV_BLOCK_MAP_ENTRY_BYTES;
		if (off + NV_FV_BLOCK_MAP_ENTRY_BYTES > header_length)
			break;
		uint32_t blocks = get_le32(b + off), length = get_le32(b + off + 4);
		if (blocks == 0 && length == 0) {
			if (total != fv_length)
				return vdisk_fail(EINVAL, "nvram: FV BlockMap covers 0x%llx bytes, "
						  "FvLength is 0x%llx", (unsigned long long)total,
						  (unsigned long long)fv_length);
			return 0;
		}
		total += (uint64_t)blocks * length;
	}
	return vdisk_fail(EINVAL, "nvram: FV BlockMap at 0x%zx has no {0, 0} terminator within "
			  "the header (HeaderLength 0x%x)", NV_FV(block_map), header_length);
}

/* EFI_FIRMWARE_VOLUME_HEADER: signature, GUID, lengths, checksum, block map, in that order. */
static int check_fv_header(const uint8_t *b, size_t bytes, uint32_t *header_length_out)
{
	if (bytes < sizeof(struct nv_fv_header) + NV_FV_BLOCK_MAP_ENTRY_BYTES)
		return vdisk_fail(EINVAL, "nvram: %zu bytes is too small for a variable store", bytes);
	if (memcmp(b + NV_FV(signature), NV_FV_SIGNATURE, 4))
		return vdisk_fail(EINVAL, "nvram: no firmware volume signature \"_FVH\" at 0x%zx",
				  NV_FV(signature));
	if (memcmp(b + NV_FV(file_system_guid), guid_nv_data_fv, 16))
		return vdisk_fail(EINVAL, "nvram: FV FileSystemGuid at 0x%zx is not "
				  "gEfiSystemNvDataFvGuid: not a variable store", NV_FV(file_system_guid));
	uint64_t fv_length = get_le64(b + NV_FV(fv_length));
	uint32_t hl = get_le16(b + NV_FV(header_length));
	if (fv_length != bytes)
		return vdisk_fail(EINVAL, "nvram: FvLength 0x%llx at 0x%zx, but the file has 0x%zx "
				  "bytes", (unsigned long long)fv_length, NV_FV(fv_length), bytes);
	if (hl < sizeof(struct nv_fv_header) + NV_FV_BLOCK_MAP_ENTRY_BYTES || hl % 2 || hl > 0x400 ||
	    hl > bytes)
		return vdisk_fail(EINVAL, "nvram: FV HeaderLength 0x%x at 0x%zx: expected an even "
				  "value from 0x48 to 0x400 inside the %zu-byte file", hl,
				  NV_FV(header_length), bytes);
	uint16_t sum = 0;
	for (uint32_t i = 0; i < hl; i += 2)
		sum = (uint16_t)(sum + get_le16(b + i));
	if (sum != 0)
		return vdisk_fail(EINVAL, "nvram: FV header checksum wrong: the 16-bit words of "
				  "0x0-0x%x sum to 0x%04x, expected 0", hl, sum);
	if (get_le16(b + NV_FV(ext_header_offset)) != 0)
		return vdisk_fail(ENOTSUP, "nvram: FV ExtHeaderOffset 0x%x: a variable store FV "
				  "has no extended header", get_le16(b + NV_FV(ext_header_offset)));
	*header_length_out = hl;
	return check_block_map(b, hl, fv_length);
}

/* VARIABLE_STORE_HEADER at HeaderLength; sets the store's regions in nv. */
static int check_store_header(struct nvram *nv, uint32_t hl)
{
	const uint8_t *s = nv->image + hl;

	if (hl + sizeof(struct nv_store_header) > nv->bytes)
		return vdisk_fail(EINVAL, "nvram: no room for the variable store header at 0x%x", hl);
	if (!memcmp(s, guid_variable, 16))
		return vdisk_fail(ENOTSUP, "nvram: variable store at 0x%x has the old "
				  "non-authenticated format (gEfiVariableGuid); genshift writes "
				  "only the authenticated format OVMF uses", hl);
	if (memcmp(s, guid_auth_variable, 16))
		return vdisk_fail(EINVAL, "nvram: variable store header at 0x%x: signature is not "
				  "gEfiAuthenticatedVariableGuid", hl);
	uint64_t end = (uint64_t)hl + get_le32(s + NV_STORE(size));
	if (get_le32(s + NV_STORE(size)) < sizeof(struct nv_store_header) ||
	    end + NV_EVENT_LOG_BYTES + NV_FTW_WORKING_BYTES > nv->bytes)
		return vdisk_fail(EINVAL, "nvram: variable store Size 0x%x at 0x%zx: the store, "
				  "event log and FTW working block do not fit in the 0x%zx-byte FV",
				  get_le32(s + NV_STORE(size)), hl + NV_STORE(size), nv->bytes);
	if (s[NV_STORE(format)] != NV_STORE_FORMATTED || s[NV_STORE(state)] != NV_STORE_HEALTHY)
		return vdisk_fail(EINVAL, "nvram: variable store Format 0x%02x / State 0x%02x at "
				  "0x%zx: expected 0x5A (formatted) / 0xFE (healthy)",
				  s[NV_STORE(format)], s[NV_STORE(state)], hl + NV_STORE(format));
	nv->vars_offset = hl + (uint32_t)sizeof(struct nv_store_header);
	nv->store_end = (uint32_t)end;
	bool big = end >= NV_STORE_BYTES_4M;
	nv->max_var_bytes = big ? NV_MAX_VAR_BYTES_4M : NV_MAX_AUTH_VAR_BYTES_2M;
	nv->max_new_bytes = big ? NV_MAX_VAR_BYTES_4M : NV_MAX_VAR_BYTES_2M;
	return 0;
}

/* The plain CRC-32 (IEEE 802.3) edk2's CalculateCrc32 computes; only 32 bytes are ever fed. */
static uint32_t crc32_ieee(const uint8_t *p, size_t n)
{
	uint32_t crc = 0xFFFFFFFFu;

	for (size_t i = 0; i < n; i++) {
		crc ^= p[i];
		for (int k = 0; k < 8; k++)
			crc = (crc >> 1) ^ (0xEDB88320u & (0u - (crc & 1)));
	}
	return ~crc;
}

static int check_ftw_header(const uint8_t *w, uint32_t at, uint64_t *queue_bytes)
{
	uint8_t copy[sizeof(struct nv_ftw_working_header)];

	if (memcmp(w, guid_working_block, 16) && memcmp(w, guid_nv_data_fv, 16))
		return vdisk_fail(EINVAL, "nvram: FTW working block at 0x%x: signature is not "
				  "gEdkiiWorkingBlockSignatureGuid", at);
	/* The CRC covers the header as first written: Crc and the state byte still erased. */
	memcpy(copy, w, sizeof(copy));
	memset(copy + NV_FTW(crc), 0xFF, 4);
	copy[NV_FTW(state)] = 0xFF;
	if (crc32_ieee(copy, sizeof(copy)) != get_le32(w + NV_FTW(crc)))
		return vdisk_fail(EINVAL, "nvram: FTW working block header at 0x%x: CRC 0x%08x, "
				  "computed 0x%08x", at, get_le32(w + NV_FTW(crc)),
				  crc32_ieee(copy, sizeof(copy)));
	/* WorkingBlockValid cleared and WorkingBlockInvalid set, else the firmware is between
	 * the working block and its spare copy. */
	if ((w[NV_FTW(state)] & 0x3) != 0x2)
		return vdisk_fail(EBUSY, "nvram: FTW working block at 0x%x is not valid (state "
				  "0x%02x): the firmware was interrupted while moving it; boot the "
				  "VM once or start from a fresh OVMF_VARS template", at,
				  w[NV_FTW(state)]);
	*queue_bytes = get_le64(w + NV_FTW(write_queue_size));
	if (*queue_bytes > NV_FTW_WORKING_BYTES - sizeof(struct nv_ftw_working_header))
		return vdisk_fail(EINVAL, "nvram: FTW WriteQueueSize 0x%llx at 0x%zx is larger "
				  "than the working block", (unsigned long long)*queue_bytes,
				  at + NV_FTW(write_queue_size));
	return 0;
}

/* A write header whose Complete bit is still set: name it and its first unfinished record. */
static int ftw_pending(const uint8_t *q, uint32_t at, uint64_t writes, uint64_t priv)
{
	char caller[37];
	uint64_t rec = 0;

	part_guid_to_str(q + NV_FTW_WH(caller_id), caller);
	for (; rec < writes; rec++) {
		uint8_t st = q[NV_FTW_WH_BYTES + rec * (NV_FTW_WR_BYTES + priv) + NV_FTW_WR_STATE];
		if (st & (NV_FTW_SPARE_COMPLETE | NV_FTW_DEST_COMPLETE))
			break;
	}
	return vdisk_fail(EBUSY, "nvram: a fault-tolerant write was interrupted (write header "
			  "at 0x%x, caller %s, %llu write(s), first unfinished: record %llu); "
			  "the firmware would replay it over any edit. Boot the VM once so it "
			  "completes, or start from a fresh OVMF_VARS template", at, caller,
			  (unsigned long long)writes, (unsigned long long)rec);
}

/* The working block after the event log: an erased block or a valid header whose write
 * queue holds only completed writes (bootfix.md §1.2 step 7). */
static int check_ftw(const struct nvram *nv)
{
	uint32_t at = nv->store_end + NV_EVENT_LOG_BYTES;
	const uint8_t *w = nv->image + at;
	uint64_t queue_bytes = 0;
	size_t first;

	if (all_ff(w, NV_FTW_WORKING_BYTES, &first))
		return 0;  /* never formatted: the firmware does it, nothing is pending */
	int r = check_ftw_header(w, at, &queue_bytes);
	if (r < 0)
		return r;
	uint64_t off = sizeof(struct nv_ftw_working_header), end = off + queue_bytes;
	while (off + NV_FTW_WH_BYTES <= end && w[off + NV_FTW_WH_STATE] != 0xFF) {
		uint8_t st = w[off + NV_FTW_WH_STATE];
		uint64_t writes = get_le64(w + off + NV_FTW_WH(number_of_writes));
		uint64_t priv = get_le64(w + off + NV_FTW_WH(private_data_size));
		if ((st & NV_FTW_HEADER_ALLOCATED) || writes > end || priv > end ||
		    off + NV_FTW_WH_BYTES + writes * (NV_FTW_WR_BYTES + priv) > end)
			return vdisk_fail(EINVAL, "nvram: FTW write header at 0x%llx (state 0x%02x, "
					  "%llu writes, %llu private bytes) does not fit the queue",
					  (unsigned long long)(at + off), st,
					  (unsigned long long)writes, (unsigned long long)priv);
		if (st & NV_FTW_COMPLETE)
			return ftw_pending(w + off, (uint32_t)(at + off), writes, priv);
		off += NV_FTW_WH_BYTES + writes * (NV_FTW_WR_BYTES + priv);
	}
	return 0;
}

/* ---------------- the variable list ---------------- */

/* States reachable from 0xFF by ANDing VAR_HEADER_VALID_ONLY, VAR_ADDED,
 * VAR_IN_DELETED_TRANSITION and VAR_DELETED: bits 2-5 never clear, bit 6 only with bit 7. */
static bool state_is_reachable(uint8_t s)
{
	return (s & 0x3C) == 0x3C && !(!(s & 0x40) && (s & 0x80));
}

/* One header at off: fields in order (state, sizes against the caps and the store end, the
 * name), filled into *slot. */
static int read_slot(const struct nvram *nv, uint32_t off, struct nvram_slot *slot)
{
	const uint8_t *h = nv->image + off;
	uint8_t state = h[NV_VAR(state)];
	uint32_t name_size = get_le32(h + NV_VAR(name_size));
	uint32_t data_size = get_le32(h + NV_VAR(data_size));
	uint64_t total = sizeof(struct nv_var_header) + (uint64_t)name_size + data_size;

	if (!state_is_reachable(state))
		return vdisk_fail(EINVAL, "nvram: variable at 0x%x: State 0x%02x is no combination "
				  "of the edk2 state transitions", off, state);
	if (name_size == 0 || name_size % 2)
		return vdisk_fail(EINVAL, "nvram: variable at 0x%x: NameSize %u (expected an even "
				  "number of bytes, at least 2)", off, name_size);
	if (off + total > nv->store_end)
		return vdisk_fail(EINVAL, "nvram: variable at 0x%x: NameSize %u + DataSize %u run "
				  "past the store end 0x%x", off, name_size, data_size, nv->store_end);
	if (total > nv->max_var_bytes)
		return vdisk_fail(EINVAL, "nvram: variable at 0x%x: %llu bytes, more than "
				  "PcdMaxVariableSize 0x%x", off, (unsigned long long)total,
				  nv->max_var_bytes);
	if (ucs2_to_utf8(h + sizeof(struct nv_var_header), name_size / 2, slot->var.name,
			 sizeof(slot->var.name)) < 0)
		return vdisk_fail(EINVAL, "nvram: variable at 0x%x: name (%u bytes) is not a "
				  "NUL-terminated UCS-2 string of at most %zu UTF-8 bytes", off,
				  name_size, sizeof(slot->var.name) - 1);
	memcpy(slot->var.guid, h + NV_VAR(vendor_guid), 16);
	slot->var.attributes = get_le32(h + NV_VAR(attributes));
	slot->var.data = h + sizeof(struct nv_var_header) + name_size;
	slot->var.bytes = data_size;
	slot->offset = off;
	slot->bytes = (uint32_t)total;
	slot->state = state;
	return 0;
}

static bool same_var(const struct nvram_var *a, const char *name, const uint8_t guid[16])
{
	return !memcmp(a->guid, guid, 16) && !strcmp(a->name, name);
}

/* edk2 Variable.c: ADDED is live; IN_DELETED_TRANSITION is live only without an ADDED copy
 * (the update that marked it stopped before the new copy was complete). */
static bool slot_is_live(const struct nvram *nv, size_t i)
{
	const struct nvram_slot *s = &nv->slots[i];

	if (s->state == NV_VAR_ADDED)
		return true;
	if (s->state != (NV_VAR_ADDED & NV_VAR_IN_DELETED_TRANSITION))
		return false;
	for (size_t j = 0; j < nv->n_slots; j++)
		if (nv->slots[j].state == NV_VAR_ADDED && same_var(&nv->slots[j].var, s->var.name,
								   s->var.guid))
			return false;
	return true;
}

static int collect_live(struct nvram *nv)
{
	nv->n_live = 0;
	for (size_t i = 0; i < nv->n_slots; i++) {
		if (!slot_is_live(nv, i))
			continue;
		for (size_t j = 0; j < nv->n_live; j++)
			if (same_var(&nv->live[j], nv->slots[i].var.name, nv->slots[i].var.guid))
				return vdisk_fail(EINVAL, "nvram: variable %s at 0x%x has a second "
						  "live copy at 0x%x", nv->slots[i].var.name,
						  nv->slots[nv->live_slot[j]].offset,
						  nv->slots[i].offset);
		nv->live[nv->n_live] = nv->slots[i].var;
		nv->live_slot[nv->n_live++] = (uint32_t)i;
	}
	return 0;
}

static int grow_slots(struct nvram *nv, size_t *cap)
{
	size_t n = *cap ? *cap * 2 : 64;
	struct nvram_slot *s = realloc(nv->slots, n * sizeof(*s));
	if (!s)
		return vdisk_fail(ENOMEM, "nvram: out of memory for %zu variables", n);
	nv->slots = s;
	struct nvram_var *l = realloc(nv->live, n * sizeof(*l));
	if (!l)
		return vdisk_fail(ENOMEM, "nvram: out of memory for %zu variables", n);
	nv->live = l;
	uint32_t *ls = realloc(nv->live_slot, n * sizeof(*ls));
	if (!ls)
		return vdisk_fail(ENOMEM, "nvram: out of memory for %zu variables", n);
	nv->live_slot = ls;
	*cap = n;
	return 0;
}

/* Walk the headers from the first until StartId is not VARIABLE_DATA (edk2
 * IsValidVariableHeader), then require the rest of the store to be erased. Rebuilds the
 * slot and live lists; run after every change too. */
static int index_vars(struct nvram *nv)
{
	size_t cap = 0, first;
	uint32_t off = nv->vars_offset;
	int r;

	nv->n_slots = 0;
	while (off + sizeof(struct nv_var_header) <= nv->store_end &&
	       get_le16(nv->image + off) == NV_VAR_START_ID) {
		if (nv->n_slots == cap && (r = grow_slots(nv, &cap)) < 0)
			return r;
		r = read_slot(nv, off, &nv->slots[nv->n_slots]);
		if (r < 0)
			return r;
		off = align_up4((uint64_t)off + nv->slots[nv->n_slots++].bytes);
		if (off > nv->store_end)
			off = nv->store_end;
	}
	nv->free_offset = off;
	if (!all_ff(nv->image + off, nv->store_end - off, &first))
		return vdisk_fail(EINVAL, "nvram: free space 0x%x-0x%x is not erased: byte 0x%02x "
				  "at 0x%zx (expected 0xFF)", off, nv->store_end,
				  nv->image[off + first], off + first);
	if (nv->n_slots == cap && (r = grow_slots(nv, &cap)) < 0)
		return r;
	return collect_live(nv);
}

/* ---------------- open / parse / free ---------------- */

int nvram_parse(const void *buf, size_t bytes, struct nvram **out)
{
	struct nvram *nv = calloc(1, sizeof(*nv));
	uint32_t hl = 0;
	int r;

	if (!nv)
		return vdisk_fail(ENOMEM, "nvram: out of memory");
	r = check_fv_header(buf, bytes, &hl);
	if (r < 0)
		goto free_nv;
	nv->image = malloc(bytes);
	if (!nv->image) {
		r = vdisk_fail(ENOMEM, "nvram: out of memory for a %zu-byte store", bytes);
		goto free_nv;
	}
	memcpy(nv->image, buf, bytes);
	nv->bytes = bytes;
	r = check_store_header(nv, hl);
	if (r < 0)
		goto free_nv;
	r = index_vars(nv);
	if (r < 0)
		goto free_nv;
	r = check_ftw(nv);
	if (r < 0)
		goto free_nv;
	*out = nv;
	return 0;
free_nv:
	nvram_free(nv);
	return r;
}

static int read_whole_file(int fd, const char *path, uint8_t **buf_out, size_t *bytes_out)
{
	struct stat st;
	uint8_t *buf;
	size_t done = 0;

	if (fstat(fd, &st) < 0)
		return vdisk_fail(errno, "nvram: cannot stat %s: %s", path, strerror(errno));
	if (!S_ISREG(st.st_mode) || st.st_size <= 0 || st.st_size > NVRAM_MAX_FILE_BYTES)
		return vdisk_fail(EINVAL, "nvram: %s: a regular file of 1 byte to 64 MiB expected "
				  "(%lld bytes)", path, (long long)st.st_size);
	buf = malloc((size_t)st.st_size);
	if (!buf)
		return vdisk_fail(ENOMEM, "nvram: out of memory reading %s", path);
	while (done < (size_t)st.st_size) {
		ssize_t n = pread(fd, buf + done, (size_t)st.st_size - done, (off_t)done);
		if (n <= 0) {
			int err = n < 0 ? errno : EIO;
			free(buf);
			return vdisk_fail(err, "nvram: short read of %s at %zu of %lld bytes", path,
					  done, (long long)st.st_size);
		}
		done += (size_t)n;
	}
	*buf_out = buf;
	*bytes_out = done;
	return 0;
}

int nvram_open(const char *path, struct nvram **out)
{
	uint8_t *buf = NULL;
	size_t bytes = 0;
	int r, fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return vdisk_fail(errno, "nvram: cannot open %s: %s", path, strerror(errno));
	r = read_whole_file(fd, path, &buf, &bytes);
	close(fd);
	if (r < 0)
		return r;
	r = nvram_parse(buf, bytes, out);
	free(buf);
	return r;
}

void nvram_free(struct nvram *nv)
{
	if (!nv)
		return;
	free(nv->image);
	free(nv->slots);
	free(nv->live);
	free(nv->live_slot);
	free(nv);
}

size_t nvram_vars(const struct nvram *nv, const struct nvram_var **vars)
{
	*vars = nv->live;
	return nv->n_live;
}

static long find_live(const struct nvram *nv, const char *name, const uint8_t guid[16])
{
	for (size_t i = 0; i < nv->n_live; i++)
		if (same_var(&nv->live[i], name, guid))
			return (long)i;
	return -1;
}

const struct nvram_var *nvram_get(const struct nvram *nv, const char *name, const uint8_t guid[16])
{
	long i = find_live(nv, name, guid);
	return i < 0 ? NULL : &nv->live[i];
}

const uint8_t *nvram_image(const struct nvram *nv, size_t *bytes)
{
	*bytes = nv->bytes;
	return nv->image;
}

/* ---------------- changes ---------------- */

/* A new variable at off in img: header with State ADDED, name, data; the pad stays 0xFF. */
static void put_var(uint8_t *img, uint32_t off, const uint16_t *name, int name_units,
		    const uint8_t guid[16], uint32_t attributes, const void *data, size_t bytes)
{
	uint8_t *h = img + off;

	memset(h, 0, sizeof(struct nv_var_header));
	put_le16(h + NV_VAR(start_id), NV_VAR_START_ID);
	h[NV_VAR(state)] = NV_VAR_ADDED;
	put_le32(h + NV_VAR(attributes), attributes);
	put_le32(h + NV_VAR(name_size), (uint32_t)name_units * 2);
	put_le32(h + NV_VAR(data_size), (uint32_t)bytes);
	memcpy(h + NV_VAR(vendor_guid), guid, 16);
	for (int i = 0; i < name_units; i++)
		put_le16(h + sizeof(struct nv_var_header) + 2 * i, name[i]);
	memcpy(h + sizeof(struct nv_var_header) + 2 * name_units, data, bytes);
}

/* A copy of the image whose variable area holds only the live variables (except the slot
 * `skip`, -1 for none), State ADDED, in store order: edk2's Reclaim(). *free_out is where
 * the next variable goes. */
static int compacted_image(const struct nvram *nv, long skip, uint8_t **img_out,
			   uint32_t *free_out)
{
	uint8_t *img = malloc(nv->bytes);
	uint32_t off = nv->vars_offset;

	if (!img)
		return vdisk_fail(ENOMEM, "nvram: out of memory compacting the store");
	memcpy(img, nv->image, nv->bytes);
	memset(img + off, 0xFF, nv->store_end - off);
	for (size_t i = 0; i < nv->n_live; i++) {
		const struct nvram_slot *s = &nv->slots[nv->live_slot[i]];
		if ((long)nv->live_slot[i] == skip)
			continue;
		memcpy(img + off, nv->image + s->offset, s->bytes);
		img[off + NV_VAR(state)] = NV_VAR_ADDED;
		off = align_up4((uint64_t)off + s->bytes);
	}
	*img_out = img;
	*free_out = off;
	return 0;
}

static int check_new_var(const struct nvram *nv, const char *name, uint32_t attributes,
			 size_t bytes, uint16_t *ucs2, int *units)
{
	*units = name ? utf8_to_ucs2(name, ucs2, 128) : -1;
	if (*units < 2)
		return vdisk_fail(EINVAL, "nvram: variable name \"%s\" is empty, too long or not "
				  "valid UTF-8 (BMP only)", name ? name : "(null)");
	if (!(attributes & NV_ATTR_NON_VOLATILE) || (attributes & ~BOOT_VAR_ATTRIBUTES))
		return vdisk_fail(ENOTSUP, "nvram: %s: attributes 0x%x; genshift writes only "
				  "non-volatile variables with NV/BS/RT bits (authenticated "
				  "variables need signatures)", name, attributes);
	if (bytes == 0 || sizeof(struct nv_var_header) + 2 * (size_t)*units + bytes >
	    nv->max_new_bytes)
		return vdisk_fail(EINVAL, "nvram: %s: %zu data bytes; expected 1 to PcdMaxVariableSize "
				  "0x%x including the header and name", name, bytes, nv->max_new_bytes);
	return 0;
}

int nvram_set(struct nvram *nv, const char *name, const uint8_t guid[16], uint32_t attributes,
	      const void *data, size_t bytes)
{
	uint16_t ucs2[128];
	int units, r = check_new_var(nv, name, attributes, bytes, ucs2, &units);
	if (r < 0)
		return r;
	long old = find_live(nv, name, guid);
	if (old >= 0 && nv->live[old].attributes == attributes && nv->live[old].bytes == bytes &&
	    !memcmp(nv->live[old].data, data, bytes))
		return 0;  /* as edk2: an identical write changes nothing */
	long old_slot = old < 0 ? -1 : (long)nv->live_slot[old];
	uint64_t need = sizeof(struct nv_var_header) + 2 * (uint64_t)units + bytes;

	/* Room left: append, then retire the old copy (edk2's order, minus the intermediate
	 * states a crash could leave: this edit is all in memory until nvram_save). */
	if (nv->free_offset + need <= nv->store_end) {
		put_var(nv->image, nv->free_offset, ucs2, units, guid, attributes, data, bytes);
		if (old_slot >= 0)
			nv->image[nv->slots[old_slot].offset + NV_VAR(state)] &=
				NV_VAR_IN_DELETED_TRANSITION & NV_VAR_DELETED;
		return index_vars(nv);
	}
	uint8_t *img = NULL;
	uint32_t free_off = 0;
	r = compacted_image(nv, old_slot, &img, &free_off);
	if (r < 0)
		return r;
	if (free_off + need > nv->store_end) {
		free(img);
		return vdisk_fail(ENOSPC, "nvram: no room for %s (%llu bytes): the store holds "
				  "0x%x bytes of live variables out of 0x%x", name,
				  (unsigned long long)need, free_off - nv->vars_offset,
				  nv->store_end - nv->vars_offset);
	}
	put_var(img, free_off, ucs2, units, guid, attributes, data, bytes);
	free(nv->image);
	nv->image = img;
	return index_vars(nv);
}

int nvram_delete(struct nvram *nv, const char *name, const uint8_t guid[16])
{
	long i = find_live(nv, name, guid);

	if (i < 0)
		return vdisk_fail(ENOENT, "nvram: no live variable %s to delete", name);
	nv->image[nv->slots[nv->live_slot[i]].offset + NV_VAR(state)] &= NV_VAR_DELETED;
	return index_vars(nv);
}

/* ---------------- saving ---------------- */

static int write_all(int fd, const uint8_t *p, size_t n, const char *path)
{
	size_t done = 0;

	while (done < n) {
		ssize_t w = write(fd, p + done, n - done);
		if (w <= 0)
			return vdisk_fail(w < 0 ? errno : EIO, "nvram: short write to %s at %zu of "
					  "%zu bytes", path, done, n);
		done += (size_t)w;
	}
	return 0;
}

static int fsync_dir_of(const char *path)
{
	char dir[PATH_MAX];
	const char *slash = strrchr(path, '/');
	int r = 0, fd;

	if (!slash)
		snprintf(dir, sizeof(dir), ".");
	else
		snprintf(dir, sizeof(dir), "%.*s", (int)(slash == path ? 1 : slash - path), path);
	fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0 || fsync(fd) < 0)
		r = vdisk_fail(errno, "nvram: cannot sync directory %s: %s", dir, strerror(errno));
	if (fd >= 0)
		close(fd);
	return r;
}

/* A running QEMU holds byte-range locks on every image it has open ("image locking"), the
 * VARS flash included; replacing the file under it would lose our edit at the firmware's
 * next write, or its writes to the old inode. */
static int check_not_in_use(const char *path)
{
	struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 0 };
	int r = 0, fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return errno == ENOENT ? 0 : vdisk_fail(errno, "nvram: cannot open %s: %s", path,
						       strerror(errno));
	if (fcntl(fd, F_OFD_GETLK, &fl) < 0)
		r = vdisk_fail(errno, "nvram: cannot test the locks of %s: %s", path, strerror(errno));
	else if (fl.l_type != F_UNLCK)
		r = vdisk_fail(EBUSY, "nvram: %s is locked by another process (byte %lld): a running "
			       "VM has it open; stop the VM first", path, (long long)fl.l_start);
	close(fd);
	return r;
}

/* Crash-safe order: the whole image into a new file beside path, fsync it, rename it over
 * path (atomic), fsync the directory so the rename itself is durable. A crash at any point
 * leaves path either as it was or as the new image. Refuses (-EBUSY) a file a running VM
 * holds locked. */
/* The replaced file's mode, owner and group go to its replacement: a libvirt VM's NVRAM is
 * owned by the hypervisor's user, which must still be able to open it. */
static int copy_owner_mode(int fd, const char *path, const char *tmp)
{
	struct stat st;

	if (stat(path, &st) < 0)
		return 0;  /* a new file: mkstemp's 0600 and our owner */
	if ((st.st_uid != geteuid() || st.st_gid != getegid()) &&
	    fchown(fd, st.st_uid, st.st_gid) < 0)
		return vdisk_fail(errno, "nvram: cannot give %s the owner %u:%u of %s: %s", tmp,
				  (unsigned)st.st_uid, (unsigned)st.st_gid, path, strerror(errno));
	if (fchmod(fd, st.st_mode & 07777) < 0)
		return vdisk_fail(errno, "nvram: cannot set the mode of %s: %s", tmp, strerror(errno));
	return 0;
}

int nvram_save(const struct nvram *nv, const char *path_arg)
{
	char tmp[PATH_MAX], real[PATH_MAX];
	/* Through a symlink, the file it names is replaced, the link kept. */
	const char *path = realpath(path_arg, real) ? real : path_arg;
	int r, fd;

	if (snprintf(tmp, sizeof(tmp), "%s.genshift-XXXXXX", path) >= (int)sizeof(tmp))
		return vdisk_fail(ENAMETOOLONG, "nvram: path too long: %s", path);
	r = check_not_in_use(path);
	if (r < 0)
		return r;
	fd = mkstemp(tmp);
	if (fd < 0)
		return vdisk_fail(errno, "nvram: cannot create a temporary file beside %s: %s",
				  path, strerror(errno));
	r = copy_owner_mode(fd, path, tmp);
	if (r < 0)
		goto unlink_tmp;
	r = write_all(fd, nv->image, nv->bytes, tmp);
	if (r < 0)
		goto unlink_tmp;
	if (fsync(fd) < 0) {
		r = vdisk_fail(errno, "nvram: cannot sync %s: %s", tmp, strerror(errno));
		goto unlink_tmp;
	}
	if (close(fd) < 0) {
		fd = -1;
		r = vdisk_fail(errno, "nvram: cannot close %s: %s", tmp, strerror(errno));
		goto unlink_tmp;
	}
	fd = -1;
	if (rename(tmp, path) < 0) {
		r = vdisk_fail(errno, "nvram: cannot rename %s to %s: %s", tmp, path, strerror(errno));
		goto unlink_tmp;
	}
	return fsync_dir_of(path);
unlink_tmp:
	if (fd >= 0)
		close(fd);
	unlink(tmp);
	return r;
}

/* ---------------- Boot#### and BootOrder ---------------- */

/* HD(number, GPT, guid, start, size)/File(loader)/End, with libefivar's builders. */
static int make_device_path(const struct nvram_boot_target *t, uint8_t *dp, size_t size,
			    ssize_t *dp_bytes)
{
	char path[NVRAM_MAX_PATH_CHARS + 2];
	uint8_t sig[16];
	ssize_t hd, file, end;
	size_t n = 0;

	if (!t->loader || !*t->loader || strlen(t->loader) > NVRAM_MAX_PATH_CHARS)
		return vdisk_fail(EINVAL, "nvram: loader path empty or longer than %u characters",
				  NVRAM_MAX_PATH_CHARS);
	if (t->loader[0] != '/' && t->loader[0] != '\\')
		path[n++] = '\\';
	for (const char *c = t->loader; *c; c++) {
		if ((unsigned char)*c < 0x20)
			return vdisk_fail(EINVAL, "nvram: loader path has a control character");
		path[n++] = *c == '/' ? '\\' : *c;  /* efidp_make_file does not convert '/' */
	}
	path[n] = '\0';
	memcpy(sig, t->part_guid, 16);
	hd = efidp_make_hd(dp, (ssize_t)size, t->part_number, t->first_lba, t->sectors, sig,
			   EFIDP_HD_FORMAT_GPT, EFIDP_HD_SIGNATURE_GUID);
	if (hd < 0)
		return vdisk_fail(EINVAL, "nvram: efidp_make_hd failed for partition %u", t->part_number);
	file = efidp_make_file(dp + hd, (ssize_t)size - hd, path);
	if (file < 0)
		return vdisk_fail(EINVAL, "nvram: efidp_make_file failed for %s", path);
	/* A full statement: the macro ends with its own ';' (bootfix.md §2.4). */
	end = efidp_make_end_entire(dp + hd + file, (ssize_t)size - hd - file)
	if (end < 0)
		return vdisk_fail(EINVAL, "nvram: efidp_make_end_entire failed");
	*dp_bytes = hd + file + end;
	return 0;
}

/* EFI_LOAD_OPTION (UEFI 2.10 §3.1.3) for t; *opt_out is malloc'ed. */
static int make_load_option(const struct nvram_boot_target *t, uint8_t **opt_out,
			    size_t *opt_bytes, uint8_t *dp, size_t dp_size, ssize_t *dp_bytes)
{
	unsigned char desc[NVRAM_MAX_PATH_CHARS + 1];
	int r = make_device_path(t, dp, dp_size, dp_bytes);

	if (r < 0)
		return r;
	if (!t->description || !*t->description || strlen(t->description) > NVRAM_MAX_PATH_CHARS)
		return vdisk_fail(EINVAL, "nvram: boot description empty or longer than %u bytes",
				  NVRAM_MAX_PATH_CHARS);
	strcpy((char *)desc, t->description);
	ssize_t need = efi_loadopt_create(NULL, 0, LOAD_OPTION_ACTIVE, (efidp)dp, *dp_bytes, desc, NULL, 0);
	uint8_t *opt = need > 0 ? malloc((size_t)need) : NULL;
	if (!opt)
		return vdisk_fail(need > 0 ? ENOMEM : EINVAL, "nvram: efi_loadopt_create cannot "
				  "size the load option for %s", t->loader);
	if (efi_loadopt_create(opt, need, LOAD_OPTION_ACTIVE, (efidp)dp, *dp_bytes, desc, NULL, 0) != need) {
		free(opt);
		return vdisk_fail(EINVAL, "nvram: efi_loadopt_create failed for %s", t->loader);
	}
	*opt_out = opt;
	*opt_bytes = (size_t)need;
	return 0;
}

/* "Boot####" with four upper-case hex digits (what edk2's BDS looks up) -> the number. */
static int boot_number(const struct nvram_var *v)
{
	unsigned n = 0;

	if (memcmp(v->guid, nvram_global_guid, 16) || strlen(v->name) != 8 ||
	    strncmp(v->name, "Boot", 4))
		return -1;
	for (int i = 4; i < 8; i++) {
		char c = v->name[i];
		if (c >= '0' && c <= '9')
			n = n * 16 + (unsigned)(c - '0');
		else if (c >= 'A' && c <= 'F')
			n = n * 16 + (unsigned)(c - 'A' + 10);
		else
			return -1;
	}
	return (int)n;
}

/* The device path of a stored load option, or NULL if it is malformed. */
static const uint8_t *load_option_path(const struct nvram_var *v, size_t *path_bytes)
{
	size_t off = 6;

	if (v->bytes < off)
		return NULL;
	while (off + 1 < v->bytes && get_le16(v->data + off) != 0)
		off += 2;
	off += 2;
	*path_bytes = get_le16(v->data + 4);
	if (off > v->bytes || *path_bytes > v->bytes - off)
		return NULL;
	return v->data + off;
}

/* Node by node (UEFI 2.10 §10.3.1): a known type, a length of at least 4 inside the list,
 * up to an End Entire node that closes it exactly. libefivar's own efidp_is_valid() checks
 * only the first node, so hostile paths must pass this before it formats them. */
static bool device_path_is_sane(const uint8_t *p, size_t bytes)
{
	size_t off = 0;

	while (off + 4 <= bytes) {
		uint8_t type = p[off];
		uint16_t len = get_le16(p + off + 2);
		if (len < 4 || len > bytes - off || ((type < 1 || type > 5) && type != 0x7F))
			return false;
		if (type == 0x7F && p[off + 1] == 0xFF)
			return off + len == bytes;
		off += len;
	}
	return false;
}

/* Formatters read a node's fixed fields whatever its length says; zeros after the copy keep
 * such reads inside our buffer. */
#define DEVICE_PATH_SLACK 1024u

int nvram_boot_describe(const struct nvram_var *v, char *desc, size_t desc_bytes, char *path,
			size_t path_bytes)
{
	size_t dp_bytes = 0;
	const uint8_t *dp = load_option_path(v, &dp_bytes);
	int r = 0;

	if (!dp)
		return vdisk_fail(EINVAL, "nvram: %s: the %zu-byte load option has no NUL-terminated "
				  "description or its FilePathListLength runs past the end", v->name,
				  v->bytes);
	if (ucs2_to_utf8(v->data + 6, (size_t)(dp - v->data - 6) / 2, desc, desc_bytes) < 0)
		return vdisk_fail(EINVAL, "nvram: %s: description longer than %zu bytes", v->name,
				  desc_bytes - 1);
	if (!device_path_is_sane(dp, dp_bytes))
		return vdisk_fail(EINVAL, "nvram: %s: malformed device path (%zu bytes)", v->name,
				  dp_bytes);
	uint8_t *copy = calloc(1, dp_bytes + DEVICE_PATH_SLACK);
	if (!copy)
		return vdisk_fail(ENOMEM, "nvram: out of memory");
	memcpy(copy, dp, dp_bytes);
	if (efidp_format_device_path(path, path_bytes, (const_efidp)copy, (ssize_t)dp_bytes) < 0)
		r = vdisk_fail(EINVAL, "nvram: %s: libefivar cannot format its device path", v->name);
	free(copy);
	return r;
}

/* The Boot#### whose device path equals dp, else the lowest unused number from 1. */
static int pick_boot_number(const struct nvram *nv, const uint8_t *dp, size_t dp_bytes)
{
	uint8_t used[0x10000 / 8] = { 0 };
	size_t path_bytes;

	for (size_t i = 0; i < nv->n_live; i++) {
		int n = boot_number(&nv->live[i]);
		if (n < 0)
			continue;
		const uint8_t *p = load_option_path(&nv->live[i], &path_bytes);
		if (p && path_bytes == dp_bytes && !memcmp(p, dp, dp_bytes))
			return n;
		used[n / 8] |= (uint8_t)(1u << (n % 8));
	}
	for (unsigned n = 1; n < 0x10000; n++)
		if (!(used[n / 8] & (1u << (n % 8))))
			return (int)n;
	return vdisk_fail(ENOSPC, "nvram: every Boot#### number is in use");
}

/* BootOrder = number, then the previous entries without duplicates. */
static int put_first_in_boot_order(struct nvram *nv, unsigned number)
{
	const struct nvram_var *old = nvram_get(nv, "BootOrder", nvram_global_guid);
	size_t n_old = old ? old->bytes / 2 : 0, n = 0;
	int r;

	if (old && old->bytes % 2)
		return vdisk_fail(EINVAL, "nvram: BootOrder has an odd length (%zu bytes)", old->bytes);
	uint8_t *order = malloc(2 * (n_old + 1));
	if (!order)
		return vdisk_fail(ENOMEM, "nvram: out of memory for BootOrder");
	put_le16(order, (uint16_t)number);
	n = 1;
	for (size_t i = 0; i < n_old; i++) {
		uint16_t e = get_le16(old->data + 2 * i);
		bool seen = false;
		for (size_t j = 0; j < n && !seen; j++)
			seen = get_le16(order + 2 * j) == e;
		if (!seen)
			put_le16(order + 2 * n++, e);
	}
	r = nvram_set(nv, "BootOrder", nvram_global_guid, BOOT_VAR_ATTRIBUTES, order, 2 * n);
	free(order);
	return r;
}

static int add_boot_steps(struct nvram *nv, const struct nvram_boot_target *t, unsigned *number)
{
	uint8_t dp[1024], *opt = NULL;
	size_t opt_bytes = 0;
	ssize_t dp_bytes = 0;
	char name[16];
	int r = make_load_option(t, &opt, &opt_bytes, dp, sizeof(dp), &dp_bytes);

	if (r < 0)
		return r;
	r = pick_boot_number(nv, dp, (size_t)dp_bytes);
	if (r < 0)
		goto free_opt;
	*number = (unsigned)r;
	snprintf(name, sizeof(name), "Boot%04X", *number);
	r = nvram_set(nv, name, nvram_global_guid, BOOT_VAR_ATTRIBUTES, opt, opt_bytes);
	if (r < 0)
		goto free_opt;
	r = put_first_in_boot_order(nv, *number);
free_opt:
	free(opt);
	return r;
}

int nvram_add_boot(struct nvram *nv, const struct nvram_boot_target *t, unsigned *number_out)
{
	uint8_t *saved = malloc(nv->bytes);
	unsigned number = 0;
	int r;

	if (!saved)
		return vdisk_fail(ENOMEM, "nvram: out of memory");
	memcpy(saved, nv->image, nv->bytes);
	r = add_boot_steps(nv, t, &number);
	if (r < 0) {
		/* Put the image back as it was, so a failed BootOrder leaves no orphan Boot####;
		 * it was valid before, so indexing it again cannot fail. */
		memcpy(nv->image, saved, nv->bytes);
		index_vars(nv);
		goto free_saved;
	}
	if (number_out)
		*number_out = number;
free_saved:
	free(saved);
	return r;
}
