/* vmm/fw_cfg.c - fw_cfg items, file directory, byte-wise data port and DMA.
 * Everything a guest hands over (descriptor address, buffer address and length) is checked
 * against guest RAM with vmm_mem_ptr() before use. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vmm/fw_cfg.h"

#define PORT_SELECTOR 0
#define PORT_DATA 1
#define PORT_DMA_HIGH 4
#define PORT_DMA_LOW 8
#define FILE_DIR_ENTRY_BYTES 64 /* u32 size, u16 select, u16 reserved, char name[56] (BE) */
#define DMA_DESC_BYTES 16       /* u32 control, u32 length, u64 address (BE) */

static const uint8_t dma_signature[8] = { 'Q', 'E', 'M', 'U', ' ', 'C', 'F', 'G' };

static struct fw_cfg_item *find(struct fw_cfg *fw, uint16_t key)
{
	for (unsigned i = 0; i < fw->n_items; i++)
		if (fw->items[i].key == key)
			return &fw->items[i];
	return NULL;
}

static int set_item(struct fw_cfg *fw, uint16_t key, const char *name, const void *data,
		    uint32_t len)
{
	if (len > FW_CFG_MAX_ITEM_BYTES)
		return vdisk_fail(EINVAL, "fw_cfg item 0x%04x: %u bytes is over the %u-byte cap",
				  key, len, FW_CFG_MAX_ITEM_BYTES);
	struct fw_cfg_item *it = find(fw, key);
	if (!it && fw->n_items == FW_CFG_MAX_ITEMS)
		return vdisk_fail(ENOSPC, "fw_cfg: all %d item slots used", FW_CFG_MAX_ITEMS);
	uint8_t *copy = malloc(len ? len : 1);
	if (!copy)
		return vdisk_fail(ENOMEM, "fw_cfg item 0x%04x: out of memory", key);
	if (len)
		memcpy(copy, data, len);
	if (!it)
		it = &fw->items[fw->n_items++];
	else
		free(it->data);
	it->key = key;
	snprintf(it->name, sizeof(it->name), "%s", name);
	it->data = copy;
	it->len = len;
	return 0;
}

int fw_cfg_add_item(struct fw_cfg *fw, uint16_t key, const void *data, uint32_t len)
{
	return set_item(fw, key, "", data, len);
}

int fw_cfg_add_u16(struct fw_cfg *fw, uint16_t key, uint16_t v)
{
	uint8_t b[2];
	put_le16(b, v);
	return fw_cfg_add_item(fw, key, b, sizeof(b));
}

int fw_cfg_add_u32(struct fw_cfg *fw, uint16_t key, uint32_t v)
{
	uint8_t b[4];
	put_le32(b, v);
	return fw_cfg_add_item(fw, key, b, sizeof(b));
}

/* FILE_DIR: u32 BE count, then one 64-byte entry per file. Firmware scans it linearly,
 * so the order of addition is kept. */
static int rebuild_dir(struct fw_cfg *fw)
{
	uint32_t len = 4 + fw->n_files * FILE_DIR_ENTRY_BYTES;
	uint8_t dir[4 + FW_CFG_MAX_ITEMS * FILE_DIR_ENTRY_BYTES];
	memset(dir, 0, len);
	put_be32(dir, fw->n_files);
	uint8_t *e = dir + 4;
	for (unsigned i = 0; i < fw->n_items; i++) {
		const struct fw_cfg_item *it = &fw->items[i];
		if (!it->name[0])
			continue;
		put_be32(e, it->len);
		put_be16(e + 4, it->key);
		memcpy(e + 8, it->name, strlen(it->name));
		e += FILE_DIR_ENTRY_BYTES;
	}
	return fw_cfg_add_item(fw, FW_CFG_FILE_DIR, dir, len);
}

int fw_cfg_add_file(struct fw_cfg *fw, const char *name, const void *data, uint32_t len)
{
	if (!name[0] || strlen(name) >= FW_CFG_NAME_BYTES)
		return vdisk_fail(ENAMETOOLONG, "fw_cfg file name '%s' must be 1..%d characters",
				  name, FW_CFG_NAME_BYTES - 1);
	for (unsigned i = 0; i < fw->n_items; i++)
		if (!strcmp(fw->items[i].name, name))
			return vdisk_fail(EEXIST, "fw_cfg file '%s' added twice", name);
	int r = set_item(fw, (uint16_t)(FW_CFG_FILE_FIRST + fw->n_files), name, data, len);
	if (r < 0)
		return r;
	fw->n_files++;
	return rebuild_dir(fw);
}

int fw_cfg_init(struct fw_cfg *fw, const struct vmm_mem *mem)
{
	memset(fw, 0, sizeof(*fw));
	fw->mem = mem;
	int r = fw_cfg_add_item(fw, FW_CFG_SIGNATURE, "QEMU", 4);
	if (r == 0)
		r = fw_cfg_add_u32(fw, FW_CFG_ID, 3); /* bit 0 traditional, bit 1 DMA */
	if (r == 0)
		r = rebuild_dir(fw);
	if (r < 0)
		fw_cfg_free(fw);
	return r;
}

void fw_cfg_free(struct fw_cfg *fw)
{
	if (!fw)
		return;
	for (unsigned i = 0; i < fw->n_items; i++)
		free(fw->items[i].data);
	fw->n_items = fw->n_files = 0;
}

static void select_item(struct fw_cfg *fw, uint16_t key)
{
	/* Bit 14 was QEMU's legacy write flag; writes are not supported, so ignore it. */
	fw->selector = key & 0xBFFF;
	fw->offset = 0;
}

/* Unknown selectors and reads past the end give zeros (firmware reads "feature off"). */
static uint8_t data_byte(struct fw_cfg *fw)
{
	struct fw_cfg_item *it = find(fw, fw->selector);
	if (!it || fw->offset >= it->len)
		return 0;
	return it->data[fw->offset++];
}

/* Copy up to len bytes of the selected item to dst (zero-filled past its end) or skip them
 * (dst NULL). The offset never passes the item's end. */
static void transfer(struct fw_cfg *fw, uint8_t *dst, uint32_t len)
{
	struct fw_cfg_item *it = find(fw, fw->selector);
	uint32_t avail = (it && fw->offset < it->len) ? it->len - fw->offset : 0;
	uint32_t n = len < avail ? len : avail;
	if (dst) {
		if (n)
			memcpy(dst, it->data + fw->offset, n);
		memset(dst + n, 0, len - n);
	}
	fw->offset += n;
}

static int dma_body(struct fw_cfg *fw, uint32_t control, uint32_t len, uint64_t addr)
{
	if (control & FW_CFG_DMA_SELECT)
		select_item(fw, (uint16_t)(control >> 16));
	if (control & FW_CFG_DMA_WRITE)
		return vdisk_fail(EINVAL, "fw_cfg DMA: write to item 0x%04x refused (read-only)",
				  fw->selector);
	if (len == 0)
		return 0;
	if (control & FW_CFG_DMA_READ) {
		uint8_t *dst = vmm_mem_ptr(fw->mem, addr, len);
		if (!dst)
			return vdisk_fail(EFAULT, "fw_cfg DMA: buffer 0x%llx+%u is outside guest RAM",
					  (unsigned long long)addr, len);
		transfer(fw, dst, len);
	} else if (control & FW_CFG_DMA_SKIP) {
		transfer(fw, NULL, len);
	}
	return 0;
}

int fw_cfg_dma(struct fw_cfg *fw, uint64_t gpa)
{
	uint8_t *desc = vmm_mem_ptr(fw->mem, gpa, DMA_DESC_BYTES);
	if (!desc) {
		fw->dma_errors++;
		return vdisk_fail(EFAULT, "fw_cfg DMA: descriptor at 0x%llx is outside guest RAM",
				  (unsigned long long)gpa);
	}
	uint32_t control = get_be32(desc);
	uint32_t len = get_be32(desc + 4);
	uint64_t addr = get_be64(desc + 8);
	int r = dma_body(fw, control, len, addr);
	if (r < 0)
		fw->dma_errors++;
	vmm_barrier();
	/* OVMF spins until control reads 0; ERROR alone reports a refusal. */
	put_be32(desc, r < 0 ? FW_CFG_DMA_ERROR : 0);
	return r;
}

static uint32_t read_port(struct fw_cfg *fw, unsigned off, unsigned size)
{
	uint32_t v = 0;
	if (off == PORT_DATA) {
		for (unsigned i = 0; i < size; i++)
			v |= (uint32_t)data_byte(fw) << (8 * i);
		return v;
	}
	if (off >= PORT_DMA_HIGH && off + size <= PORT_DMA_HIGH + 8) {
		/* The DMA register reads back the signature "QEMU CFG" (big-endian). */
		for (unsigned i = 0; i < size; i++)
			v = v << 8 | dma_signature[off - PORT_DMA_HIGH + i];
		return v;
	}
	return 0; /* the selector is write-only */
}

static void write_port(struct fw_cfg *fw, unsigned off, unsigned size, uint32_t val)
{
	if (off == PORT_SELECTOR && size >= 2) {
		select_item(fw, (uint16_t)val);
	} else if (off == PORT_DMA_HIGH && size == 4) {
		fw->dma_high = __builtin_bswap32(val); /* the guest writes big-endian values */
	} else if (off == PORT_DMA_LOW && size == 4) {
		uint64_t gpa = (uint64_t)fw->dma_high << 32 | __builtin_bswap32(val);
		fw->dma_high = 0;
		(void)fw_cfg_dma(fw, gpa);
	}
}

void fw_cfg_pio(void *dev, unsigned off, unsigned size, uint32_t *val, bool is_write)
{
	if (is_write)
		write_port(dev, off, size, *val);
	else
		*val = read_port(dev, off, size);
}
