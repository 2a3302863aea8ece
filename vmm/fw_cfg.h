/* vmm/fw_cfg.h - QEMU's firmware configuration interface (I/O 0x510-0x51B, with DMA).
 * Spec: QEMU docs/specs/fw_cfg.rst; what SeaBIOS/OVMF read: vmm-device-model.md section 2. */
#ifndef GENSHIFT_FW_CFG_H
#define GENSHIFT_FW_CFG_H

#include <stdbool.h>
#include <stdint.h>

#include "vmm/vmm-int.h"

#define FW_CFG_PORTS 12 /* 0x510 selector, 0x511 data, 0x514..0x51B DMA address */

#define FW_CFG_SIGNATURE 0x0000
#define FW_CFG_ID 0x0001
#define FW_CFG_NOGRAPHIC 0x0004
#define FW_CFG_NB_CPUS 0x0005
#define FW_CFG_BOOT_MENU 0x000E
#define FW_CFG_MAX_CPUS 0x000F
#define FW_CFG_FILE_DIR 0x0019
#define FW_CFG_FILE_FIRST 0x0020
#define FW_CFG_IRQ0_OVERRIDE 0x8002

#define FW_CFG_MAX_ITEMS 64
#define FW_CFG_NAME_BYTES 56
#define FW_CFG_MAX_ITEM_BYTES (16u << 20)

/* DMA control bits (big-endian u32 in the guest's descriptor). */
#define FW_CFG_DMA_ERROR 0x01u
#define FW_CFG_DMA_READ 0x02u
#define FW_CFG_DMA_SKIP 0x04u
#define FW_CFG_DMA_SELECT 0x08u
#define FW_CFG_DMA_WRITE 0x10u

struct fw_cfg_item {
	uint16_t key;
	char name[FW_CFG_NAME_BYTES]; /* "" for the fixed keys */
	uint8_t *data;                /* owned */
	uint32_t len;
};

struct fw_cfg {
	struct fw_cfg_item items[FW_CFG_MAX_ITEMS];
	unsigned n_items, n_files;
	uint16_t selector;
	uint32_t offset;   /* read position inside the selected item */
	uint32_t dma_high; /* last write to 0x514 */
	const struct vmm_mem *mem;
	unsigned dma_errors; /* descriptors refused (outside RAM, writes) */
};

/* Empty device with the signature, ID (traditional + DMA) and an empty file directory.
 * mem is where DMA descriptors and buffers live (borrowed). 0 or -ENOMEM. */
int fw_cfg_init(struct fw_cfg *fw, const struct vmm_mem *mem);
void fw_cfg_free(struct fw_cfg *fw);
/* A fixed-key item (data copied). Replaces an existing item with that key. */
int fw_cfg_add_item(struct fw_cfg *fw, uint16_t key, const void *data, uint32_t len);
int fw_cfg_add_u16(struct fw_cfg *fw, uint16_t key, uint16_t v); /* little-endian */
int fw_cfg_add_u32(struct fw_cfg *fw, uint16_t key, uint32_t v);
/* A named file (data copied) under the next free key from 0x20; the directory is rebuilt.
 * -EEXIST for a duplicate name, -ENAMETOOLONG past 55 characters, -ENOSPC when full. */
int fw_cfg_add_file(struct fw_cfg *fw, const char *name, const void *data, uint32_t len);

/* Port access, off relative to 0x510. A write to 0x518 runs the DMA descriptor. */
void fw_cfg_pio(void *dev, unsigned off, unsigned size, uint32_t *val, bool is_write);
/* Run the DMA descriptor at guest-physical gpa (exposed for tests). Returns 0, or -EFAULT /
 * -EINVAL when the descriptor or its buffer is refused (the guest sees the ERROR bit). */
int fw_cfg_dma(struct fw_cfg *fw, uint64_t gpa);

#endif
