/* partition/types.c - the MBR type byte <-> GPT type GUID table, GUID text conversion.
 *
 * Mappings: ../shared/docs/bootfix.md §4.3, which follows gptfdisk's parttypes.cc (GPT code =
 * MBR type x 0x100, names as gdisk gives them) and MBR2GPT's rules for Windows types
 * (0x27 -> Windows RE with attributes platform-required | no-drive-letter).
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "partition/mbr-format.h"
#include "partition/part-int.h"

#define GUID_BASIC_DATA "EBD0A0A2-B9E5-4433-87C0-68B6B72699C7"
const char PART_GUID_ESP[] = "C12A7328-F81F-11D2-BA4B-00A0C93EC93B";
const char PART_GUID_MSR[] = "E3C9E316-0B5C-4DB8-817D-F92DF00215AE";

static const struct part_type_info types[] = {
	{ 0x01, GUID_BASIC_DATA, "Microsoft basic data", 0 }, /* FAT12 */
	{ 0x04, GUID_BASIC_DATA, "Microsoft basic data", 0 }, /* FAT16 < 32 MiB */
	{ 0x06, GUID_BASIC_DATA, "Microsoft basic data", 0 }, /* FAT16 */
	{ 0x07, GUID_BASIC_DATA, "Microsoft basic data", 0 }, /* NTFS / exFAT */
	{ 0x0B, GUID_BASIC_DATA, "Microsoft basic data", 0 }, /* FAT32 CHS */
	{ 0x0C, GUID_BASIC_DATA, "Microsoft basic data", 0 }, /* FAT32 LBA */
	{ 0x0E, GUID_BASIC_DATA, "Microsoft basic data", 0 }, /* FAT16 LBA */
	{ 0x11, GUID_BASIC_DATA, "Microsoft basic data", 0 }, /* hidden variants */
	{ 0x14, GUID_BASIC_DATA, "Microsoft basic data", 0 },
	{ 0x16, GUID_BASIC_DATA, "Microsoft basic data", 0 },
	{ 0x17, GUID_BASIC_DATA, "Microsoft basic data", 0 },
	{ 0x1B, GUID_BASIC_DATA, "Microsoft basic data", 0 },
	{ 0x1C, GUID_BASIC_DATA, "Microsoft basic data", 0 },
	{ 0x1E, GUID_BASIC_DATA, "Microsoft basic data", 0 },
	/* MBR2GPT: platform-required (bit 0) | no drive letter (bit 63). */
	{ 0x27, "DE94BBA4-06D1-4D40-A16A-BFD50179D6AC", "Windows RE", 0x8000000000000001ull },
	{ 0x82, "0657FD6D-A4AB-43C4-84E5-0933C84B4F4F", "Linux swap", 0 },
	{ 0x83, "0FC63DAF-8483-4772-8E79-3D69D8477DE4", "Linux filesystem", 0 },
	{ 0x8E, "E6D6D379-F507-44C2-A23C-238F2A3DF928", "Linux LVM", 0 },
	{ 0xEF, PART_GUID_ESP, "EFI system partition", 0 },
	{ 0xFD, "A19D880F-05FC-4D3B-A006-743F0F84911E", "Linux RAID", 0 },
	/* GPT-only types, for naming. */
	{ 0, PART_GUID_MSR, "Microsoft reserved partition", 0 },
	{ 0, "21686148-6449-6E6F-744E-656564454649", "BIOS boot partition", 0 },
};

const struct part_type_info *part_type_by_mbr(uint8_t mbr_type)
{
	for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++)
		if (types[i].mbr_type == mbr_type && mbr_type != 0)
			return &types[i];
	return NULL;
}

const struct part_type_info *part_type_by_guid(const uint8_t guid[16])
{
	uint8_t g[16];

	for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++)
		if (part_guid_parse(types[i].guid, g) == 0 && !memcmp(g, guid, 16))
			return &types[i];
	return NULL;
}

bool part_mbr_type_is_extended(uint8_t t)
{
	return t == MBR_TYPE_EXTENDED_CHS || t == MBR_TYPE_EXTENDED_LBA ||
	       t == MBR_TYPE_EXTENDED_LINUX;
}

const char *part_type_name(const struct part_entry *e, char buf[32])
{
	const struct part_type_info *ti;
	char g[37];

	if (e->mbr_type) {
		ti = part_type_by_mbr(e->mbr_type);
		if (ti)
			return ti->name;
		snprintf(buf, 32, "MBR type 0x%02x", e->mbr_type);
		return buf;
	}
	ti = part_type_by_guid(e->type_guid);
	if (ti)
		return ti->name;
	part_guid_to_str(e->type_guid, g);
	snprintf(buf, 32, "%.8s...", g);
	return buf;
}

/* Data1..Data3 are little-endian on disk, the last 8 bytes in text order. */
void part_guid_to_str(const uint8_t g[16], char out[37])
{
	snprintf(out, 37, "%08X-%04X-%04X-%02X%02X-%02X%02X%02X%02X%02X%02X", get_le32(g),
		 get_le16(g + 4), get_le16(g + 6), g[8], g[9], g[10], g[11], g[12], g[13], g[14],
		 g[15]);
}

static int hex_value(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int part_guid_parse(const char *s, uint8_t out[16])
{
	/* Byte i of the text form (hex pairs, dashes skipped) goes to on-disk position pos[i]. */
	static const uint8_t pos[16] = { 3, 2, 1, 0, 5, 4, 7, 6, 8, 9, 10, 11, 12, 13, 14, 15 };
	uint8_t g[16];
	size_t i = 0;

	if (strlen(s) != 36)
		return -EINVAL;
	for (const char *p = s; *p; ) {
		if (*p == '-') {
			long at = p - s;
			if (at != 8 && at != 13 && at != 18 && at != 23)
				return -EINVAL;
			p++;
			continue;
		}
		int hi = hex_value(p[0]), lo = p[1] ? hex_value(p[1]) : -1;
		if (hi < 0 || lo < 0 || i >= 16)
			return -EINVAL;
		g[pos[i++]] = (uint8_t)(hi << 4 | lo);
		p += 2;
	}
	if (i != 16)
		return -EINVAL;
	memcpy(out, g, 16);
	return 0;
}
