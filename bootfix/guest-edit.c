/* bootfix/guest-edit.c - parsing and rewriting the guest's fstab and kernel command lines
 * (the text half of guest.c; see guest-int.h). Input is whatever the guest's files hold:
 * sizes are capped, NUL bytes refused, and every line is copied through unchanged unless
 * one of its words is a reference the conversion broke. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "bootfix/guest-int.h"
#include "vhdx/vdisk.h"

/* A growing output buffer; on allocation failure it remembers the error and stops. */
struct text_buf {
	char *data;
	size_t bytes, cap;
	int err;
};

static void buf_put(struct text_buf *b, const char *s, size_t n)
{
	if (b->err)
		return;
	if (b->bytes + n + 1 > b->cap) {
		size_t cap = (b->bytes + n + 1) * 2;
		char *p = realloc(b->data, cap);
		if (!p) {
			b->err = -ENOMEM;
			return;
		}
		b->data = p;
		b->cap = cap;
	}
	memcpy(b->data + b->bytes, s, n);
	b->bytes += n;
	b->data[b->bytes] = '\0';
}

static int buf_finish(struct text_buf *b, char **out, size_t *out_bytes)
{
	buf_put(b, "", 0);
	if (b->err) {
		free(b->data);
		return vdisk_fail(ENOMEM, "guest: out of memory rewriting a file");
	}
	*out = b->data;
	*out_bytes = b->bytes;
	return 0;
}

static bool is_blank(char c)
{
	return c == ' ' || c == '\t';
}

int guest_report_add(struct guest_fix_report *r, const char *fmt, ...)
{
	va_list ap;
	char *line, **v;
	int n;
	va_start(ap, fmt);
	n = vasprintf(&line, fmt, ap);
	va_end(ap);
	if (n < 0)
		return vdisk_fail(ENOMEM, "guest: out of memory for the change report");
	for (size_t i = 0; i < r->n_changes; i++) {
		if (!strcmp(r->changes[i], line)) {
			free(line);
			return 0;
		}
	}
	v = realloc(r->changes, (r->n_changes + 1) * sizeof(*v));
	if (!v) {
		free(line);
		return vdisk_fail(ENOMEM, "guest: out of memory for the change report");
	}
	r->changes = v;
	r->changes[r->n_changes++] = line;
	return 0;
}

/* ---- fstab parsing ---- */

void guest_fstab_free(struct guest_fstab_entry *e, size_t n)
{
	for (size_t i = 0; e && i < n; i++) {
		free(e[i].spec);
		free(e[i].mountpoint);
		free(e[i].fstype);
	}
	free(e);
}

/* The next field of [*p, end), skipping blanks first; "" when the line has no more. */
static char *next_field(const char **p, const char *end)
{
	const char *s = *p, *e;
	while (s < end && is_blank(*s))
		s++;
	e = s;
	while (e < end && !is_blank(*e))
		e++;
	*p = e;
	return strndup(s, (size_t)(e - s));
}

static int parse_line(const char *s, const char *end, struct guest_fstab_entry *e)
{
	e->spec = next_field(&s, end);
	e->mountpoint = next_field(&s, end);
	e->fstype = next_field(&s, end);
	if (!e->spec || !e->mountpoint || !e->fstype)
		return vdisk_fail(ENOMEM, "guest: out of memory parsing fstab");
	return 0;
}

/* Whether [s, end) holds an entry: not blank and not a comment. */
static bool line_has_entry(const char *s, const char *end)
{
	while (s < end && (is_blank(*s) || *s == '\r'))
		s++;
	return s < end && *s != '#';
}

int guest_fstab_parse(const char *text, size_t bytes, struct guest_fstab_entry **out,
		      size_t *n_out)
{
	struct guest_fstab_entry *v = NULL;
	const char *p = text, *end = text + bytes;
	size_t n = 0;
	int rc = 0;
	if (bytes > GUEST_FSTAB_MAX_BYTES)
		return vdisk_fail(EINVAL, "guest: /etc/fstab is %zu bytes, more than the %u accepted",
				  bytes, GUEST_FSTAB_MAX_BYTES);
	if (memchr(text, '\0', bytes))
		return vdisk_fail(EINVAL, "guest: /etc/fstab holds a NUL byte at offset %zu",
				  (size_t)((const char *)memchr(text, '\0', bytes) - text));
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *eol = nl ? nl : end;
		if (line_has_entry(p, eol)) {
			struct guest_fstab_entry *nv;
			if (n == GUEST_FSTAB_MAX_ENTRIES) {
				rc = vdisk_fail(EINVAL, "guest: /etc/fstab has more than %u entries",
						GUEST_FSTAB_MAX_ENTRIES);
				goto free_entries;
			}
			nv = realloc(v, (n + 1) * sizeof(*v));
			if (!nv) {
				rc = vdisk_fail(ENOMEM, "guest: out of memory parsing fstab");
				goto free_entries;
			}
			v = nv;
			memset(&v[n], 0, sizeof(v[n]));
			rc = parse_line(p, eol, &v[n++]);
			if (rc < 0)
				goto free_entries;
		}
		p = nl ? nl + 1 : end;
	}
	*out = v;
	*n_out = n;
	return 0;

free_entries:
	guest_fstab_free(v, n);
	return rc;
}

/* ---- references to the boot disk ---- */

/* "/dev/<sd|hd|vd|xvd>a<N>" with N in 1..GUEST_MAX_PARTS; 0 when not such a name. */
static unsigned disk_a_partition(const char *s, size_t n)
{
	static const char *const prefixes[] = { "/dev/sda", "/dev/hda", "/dev/vda", "/dev/xvda" };
	for (size_t i = 0; i < sizeof(prefixes) / sizeof(prefixes[0]); i++) {
		size_t pl = strlen(prefixes[i]);
		unsigned num = 0;
		if (n <= pl || n > pl + 3 || memcmp(s, prefixes[i], pl) || s[pl] == '0')
			continue;
		for (size_t k = pl; k < n; k++) {
			if (s[k] < '0' || s[k] > '9')
				return 0;
			num = num * 10 + (unsigned)(s[k] - '0');
		}
		return num <= GUEST_MAX_PARTS ? num : 0;
	}
	return 0;
}

/* The new PARTUUID for old (n bytes, compared without regard to case), or NULL. */
static const char *partuuid_new(const struct guest_remap *m, const char *old, size_t n)
{
	for (size_t i = 0; i < m->n_partuuids; i++) {
		const char *o = m->partuuid_old[i];
		if (o && m->partuuid_new[i] && strlen(o) == n && !strncasecmp(o, old, n))
			return m->partuuid_new[i];
	}
	return NULL;
}

int guest_remap_spec(const struct guest_remap *m, const char *spec, size_t spec_bytes,
		     char **out)
{
	static const char *const partuuid_forms[] = { "PARTUUID=", "/dev/disk/by-partuuid/" };
	unsigned part = disk_a_partition(spec, spec_bytes);
	const char *repl = NULL, *form = "UUID=";
	if (part) {
		repl = m->fs_uuid[part];
	} else {
		for (size_t i = 0; i < 2 && !repl; i++) {
			size_t fl = strlen(partuuid_forms[i]);
			if (spec_bytes > fl && !memcmp(spec, partuuid_forms[i], fl)) {
				form = partuuid_forms[i];
				repl = partuuid_new(m, spec + fl, spec_bytes - fl);
			}
		}
	}
	if (!repl || !*repl)
		return 0;
	if (asprintf(out, "%s%s", form, repl) < 0)
		return vdisk_fail(ENOMEM, "guest: out of memory rewriting %.*s", (int)spec_bytes,
				  spec);
	return 1;
}

/* ---- fstab rewriting ---- */

/* Whether a mountpoint field (n bytes) names /boot/efi, trailing slashes ignored. */
static bool is_boot_efi(const char *s, size_t n)
{
	while (n > 1 && s[n - 1] == '/')
		n--;
	return n == 9 && !memcmp(s, "/boot/efi", 9);
}

/* Copy one fstab line [s, eol) to b with its spec remapped; *esp_seen set if it mounts
 * /boot/efi. */
static int fstab_line(const char *file, const char *s, const char *eol,
		      const struct guest_remap *m, struct guest_fix_report *r, struct text_buf *b,
		      bool *esp_seen)
{
	const char *spec = s, *spec_end, *mp, *mp_end;
	char *repl = NULL;
	int rc;
	while (spec < eol && is_blank(*spec))
		spec++;
	for (spec_end = spec; spec_end < eol && !is_blank(*spec_end); spec_end++)
		;
	for (mp = spec_end; mp < eol && is_blank(*mp); mp++)
		;
	for (mp_end = mp; mp_end < eol && !is_blank(*mp_end) && *mp_end != '\r'; mp_end++)
		;
	if (is_boot_efi(mp, (size_t)(mp_end - mp)))
		*esp_seen = true;
	rc = guest_remap_spec(m, spec, (size_t)(spec_end - spec), &repl);
	if (rc <= 0) {
		buf_put(b, s, (size_t)(eol - s));
		return rc;
	}
	buf_put(b, s, (size_t)(spec - s));
	buf_put(b, repl, strlen(repl));
	buf_put(b, spec_end, (size_t)(eol - spec_end));
	rc = guest_report_add(r, "%s: %.*s -> %s", file, (int)(spec_end - spec), spec, repl);
	free(repl);
	return rc;
}

static int append_esp_line(const char *file, const char *esp_uuid, struct guest_fix_report *r,
			   struct text_buf *b)
{
	char line[128];
	snprintf(line, sizeof(line), "UUID=%s /boot/efi vfat umask=0077,nofail 0 1\n", esp_uuid);
	if (b->bytes > 0 && b->data[b->bytes - 1] != '\n')
		buf_put(b, "\n", 1);
	buf_put(b, line, strlen(line));
	return guest_report_add(r, "%s: added UUID=%s /boot/efi vfat umask=0077,nofail 0 1", file,
				esp_uuid);
}

int guest_fstab_edit(const char *file, const char *text, size_t bytes,
		     const struct guest_remap *m, const char *esp_uuid, struct guest_fix_report *r,
		     char **out, size_t *out_bytes)
{
	struct text_buf b = { 0 };
	const char *p = text, *end = text + bytes;
	bool esp_seen = false;
	int rc = 0;
	if (bytes > GUEST_FSTAB_MAX_BYTES || memchr(text, '\0', bytes))
		return vdisk_fail(EINVAL, "guest: %s is larger than %u bytes or holds a NUL byte",
				  file, GUEST_FSTAB_MAX_BYTES);
	while (p < end && rc >= 0) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *eol = nl ? nl : end;
		if (line_has_entry(p, eol))
			rc = fstab_line(file, p, eol, m, r, &b, &esp_seen);
		else
			buf_put(&b, p, (size_t)(eol - p));
		if (nl)
			buf_put(&b, "\n", 1);
		p = nl ? nl + 1 : end;
	}
	if (rc >= 0 && esp_uuid && !esp_seen)
		rc = append_esp_line(file, esp_uuid, r, &b);
	if (rc < 0) {
		free(b.data);
		return rc;
	}
	return buf_finish(&b, out, out_bytes);
}

/* ---- kernel command lines ---- */

static bool is_value_end(char c)
{
	return is_blank(c) || c == '\n' || c == '\r' || c == '"' || c == '\'' || c == ';';
}

/* If a root= or resume= parameter starts at text[i], its length up to the value; else 0. */
static size_t param_at(const char *text, size_t bytes, size_t i)
{
	static const char *const params[] = { "root=", "resume=" };
	char prev = i ? text[i - 1] : ' ';
	if (!(is_blank(prev) || prev == '\n' || prev == '"' || prev == '\''))
		return 0;
	for (size_t k = 0; k < 2; k++) {
		size_t n = strlen(params[k]);
		if (bytes - i >= n && !memcmp(text + i, params[k], n))
			return n;
	}
	return 0;
}

int guest_cmdline_edit(const char *file, const char *text, size_t bytes,
		       const struct guest_remap *m, struct guest_fix_report *r, char **out,
		       size_t *out_bytes)
{
	struct text_buf b = { 0 };
	size_t i = 0, copied = 0;
	int rc = 0;
	if (bytes > GUEST_CFG_MAX_BYTES || memchr(text, '\0', bytes))
		return vdisk_fail(EINVAL, "guest: %s is larger than %u bytes or holds a NUL byte",
				  file, GUEST_CFG_MAX_BYTES);
	while (i < bytes && rc >= 0) {
		size_t name = param_at(text, bytes, i), v = i + name, ve = v;
		char *repl = NULL;
		if (!name) {
			i++;
			continue;
		}
		while (ve < bytes && !is_value_end(text[ve]))
			ve++;
		rc = guest_remap_spec(m, text + v, ve - v, &repl);
		if (rc > 0) {
			buf_put(&b, text + copied, v - copied);
			buf_put(&b, repl, strlen(repl));
			copied = ve;
			rc = guest_report_add(r, "%s: %.*s -> %.*s%s", file, (int)(ve - i), text + i,
					      (int)name, text + i, repl);
			free(repl);
		}
		i = ve;
	}
	buf_put(&b, text + copied, bytes - copied);
	if (rc < 0) {
		free(b.data);
		return rc;
	}
	return buf_finish(&b, out, out_bytes);
}

/* ---- grub.cfg facts ---- */

/* Whether the line [s, eol) has word w (delimited by blanks) outside a comment; first: only
 * as its first word. */
static bool line_has_word(const char *s, const char *eol, const char *w, bool first)
{
	size_t n = strlen(w);
	while (s < eol) {
		const char *e;
		while (s < eol && is_blank(*s))
			s++;
		if (s == eol || *s == '#')
			return false;
		for (e = s; e < eol && !is_blank(*e) && *e != '\r'; e++)
			;
		if ((size_t)(e - s) == n && !memcmp(s, w, n))
			return true;
		if (first)
			return false;
		s = e + (e < eol);
	}
	return false;
}

void guest_grub_cfg_scan(const char *text, size_t bytes, bool *bls, bool *linux16)
{
	const char *p = text, *end = text + bytes;
	*bls = *linux16 = false;
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *eol = nl ? nl : end;
		if (line_has_word(p, eol, "blscfg", false))
			*bls = true;
		if (line_has_word(p, eol, "linux16", true) || line_has_word(p, eol, "initrd16", true))
			*linux16 = true;
		p = nl ? nl + 1 : end;
	}
}
