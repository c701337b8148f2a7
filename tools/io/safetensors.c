/*
 * safetensors.c - safetensors reader (from memory) and writer, JSON through Jansson.
 */
#include "safetensors.h"

#include <jansson.h>
#include <stddef.h>
#include <stdlib.h>
#include <errno.h>
#include <string.h>

void qio_st_free(qio_st_file *f)
{
    if (!f)
        return;
    for (size_t i = 0; i < f->count; i++) {
        free(f->tensors[i].name);
        free(f->tensors[i].dtype_raw);
    }
    for (size_t i = 0; i < f->meta_count; i++) {
        free(f->meta[i].key);
        free(f->meta[i].value);
    }
    free(f->tensors);
    free(f->meta);
    free(f->by_name_);
    free(f->meta_by_key_);
    memset(f, 0, sizeof *f);
}

/* Both index arrays hold pointers to structs whose first member is the name (char *). */
_Static_assert(offsetof(qio_st_tensor, name) == 0 && offsetof(qio_st_meta, key) == 0,
               "the name indexes read the name through the struct pointer");
static int cmp_name_ptr(const void *a, const void *b)
{
    const char *const *x = *(const char *const *const *)a, *const *y = *(const char *const *const *)b;
    return strcmp(*x, *y);
}

static const void *find_sorted(const void *const *index, size_t n, const char *name)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        const size_t mid = lo + (hi - lo) / 2;
        const int c = strcmp(*(const char *const *)index[mid], name);
        if (c == 0)
            return index[mid];
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

/* The name indexes of a filled qio_st_file; -1 (e set) when out of memory. */
static int build_index(qio_st_file *f, qio_error *e)
{
    f->by_name_ = malloc((f->count ? f->count : 1) * sizeof *f->by_name_);
    f->meta_by_key_ = malloc((f->meta_count ? f->meta_count : 1) * sizeof *f->meta_by_key_);
    if (!f->by_name_ || !f->meta_by_key_)
        return qio_fail(e, "out of memory");
    for (size_t i = 0; i < f->count; i++)
        f->by_name_[i] = &f->tensors[i];
    for (size_t i = 0; i < f->meta_count; i++)
        f->meta_by_key_[i] = &f->meta[i];
    qsort(f->by_name_, f->count, sizeof *f->by_name_, cmp_name_ptr);
    qsort(f->meta_by_key_, f->meta_count, sizeof *f->meta_by_key_, cmp_name_ptr);
    return 0;
}

const qio_tensor *qio_st_find(const qio_st_file *f, const char *name)
{
    const qio_st_tensor *t = find_sorted((const void *const *)f->by_name_, f->count, name);
    return t ? &t->t : NULL;
}

const char *qio_st_meta_get(const qio_st_file *f, const char *key)
{
    const qio_st_meta *m = find_sorted((const void *const *)f->meta_by_key_, f->meta_count, key);
    return m ? m->value : NULL;
}

/* Offsets are kept beside the tensor while sorting. */
typedef struct {
    qio_st_tensor t;
    uint64_t begin, end;
} entry;

static int cmp_entry(const void *a, const void *b)
{
    const entry *x = a, *y = b;
    if (x->begin != y->begin)
        return x->begin < y->begin ? -1 : 1;
    if (x->end != y->end)
        return x->end < y->end ? -1 : 1;
    return strcmp(x->t.name, y->t.name);
}

/* Reads a non-negative JSON integer. */
static int get_u64(const json_t *v, uint64_t *out)
{
    if (!json_is_integer(v) || json_integer_value(v) < 0)
        return -1;
    *out = (uint64_t)json_integer_value(v);
    return 0;
}

static int parse_entry(const char *name, json_t *info, entry *en, qio_error *e)
{
    if (!json_is_object(info))
        return qio_fail(e, "tensor '%s': header entry is not an object", name);
    json_t *dt = json_object_get(info, "dtype"), *shape = json_object_get(info, "shape"),
           *offs = json_object_get(info, "data_offsets");
    if (!json_is_string(dt))
        return qio_fail(e, "tensor '%s': missing or non-string \"dtype\"", name);
    const char *dts = json_string_value(dt);
    if (qio_dtype_from_name(dts, &en->t.t.dtype)) {
        if (dts[0] == '\0' || strlen(dts) > 32)
            return qio_fail(e, "tensor '%s': dtype \"%s\" is not a dtype name", name, dts);
        en->t.t.dtype = QIO_OTHER; /* kept opaque: its element size is unknown here */
        en->t.dtype_raw = qio_strdup(dts);
        if (!en->t.dtype_raw)
            return qio_fail(e, "out of memory");
    }
    const int opaque = en->t.t.dtype == QIO_OTHER;
    if (!json_is_array(shape))
        return qio_fail(e, "tensor '%s': missing or non-array \"shape\"", name);
    if (json_array_size(shape) > QIO_MAX_DIMS)
        return qio_fail(e, "tensor '%s': more than %d dimensions", name, QIO_MAX_DIMS);
    if (!json_is_array(offs) || json_array_size(offs) != 2)
        return qio_fail(e, "tensor '%s': \"data_offsets\" must be an array of two integers", name);
    size_t nbytes = qio_dtype_size(en->t.t.dtype);
    en->t.t.ndim = (int)json_array_size(shape);
    for (size_t i = 0; i < json_array_size(shape); i++) {
        uint64_t d;
        if (get_u64(json_array_get(shape, i), &d))
            return qio_fail(e, "tensor '%s': \"shape\" must hold non-negative integers", name);
        if (d > (uint64_t)INT64_MAX || d > SIZE_MAX ||
            (!opaque && qio_mul_size(nbytes, (size_t)d, &nbytes)))
            return qio_fail(e, "tensor '%s': shape too large (size overflows)", name);
        en->t.t.shape[i] = (int64_t)d;
    }
    if (get_u64(json_array_get(offs, 0), &en->begin) || get_u64(json_array_get(offs, 1), &en->end))
        return qio_fail(e, "tensor '%s': \"data_offsets\" must be non-negative integers", name);
    if (en->end < en->begin)
        return qio_fail(e, "tensor '%s': data_offsets [%llu, %llu] end before they begin", name,
                        (unsigned long long)en->begin, (unsigned long long)en->end);
    if (opaque) {
        if (en->end - en->begin > SIZE_MAX)
            return qio_fail(e, "tensor '%s': data_offsets span too many bytes", name);
        nbytes = (size_t)(en->end - en->begin);
    } else if (en->end - en->begin != (uint64_t)nbytes)
        return qio_fail(e, "tensor '%s': data_offsets span %llu bytes, but its shape and dtype "
                           "need %zu", name, (unsigned long long)(en->end - en->begin), nbytes);
    en->t.t.nbytes = nbytes;
    return 0;
}

int qio_st_parse(const uint8_t *data, size_t size, qio_st_file *out, qio_error *e)
{
    memset(out, 0, sizeof *out);
    if (size < 8)
        return qio_fail(e, "too short for a safetensors file (%zu bytes)", size);
    uint64_t n = 0;
    for (int i = 7; i >= 0; i--)
        n = n << 8 | data[i];
    if (n > QIO_ST_MAX_HEADER)
        return qio_fail(e, "header length %llu exceeds the limit of %llu bytes (qmv's bound on "
                           "the memory of parsing it)",
                        (unsigned long long)n, (unsigned long long)QIO_ST_MAX_HEADER);
    if (n > size - 8)
        return qio_fail(e, "truncated: header length %llu, but only %zu bytes follow",
                        (unsigned long long)n, size - 8);
    if (n < 2)
        return qio_fail(e, "header too short to be a JSON object");
    const char *hdr = (const char *)data + 8;
    /* The reference format requires an object; check the first non-space byte ourselves so a
     * top-level array gets a clear message. */
    size_t i0 = 0;
    while (i0 < n && (hdr[i0] == ' ' || hdr[i0] == '\t' || hdr[i0] == '\n' || hdr[i0] == '\r'))
        i0++;
    if (i0 == n || hdr[i0] != '{')
        return qio_fail(e, "header is not a JSON object");

    json_error_t jerr;
    json_t *root = json_loadb(hdr, (size_t)n, JSON_REJECT_DUPLICATES, &jerr);
    if (!root)
        return qio_fail(e, "header is not valid JSON: %s (byte %d)", jerr.text, jerr.position);
    if (!json_is_object(root)) {
        json_decref(root);
        return qio_fail(e, "header is not a JSON object");
    }

    const size_t buf_size = size - 8 - (size_t)n;
    const size_t members = json_object_size(root);
    entry *ents = calloc(members ? members : 1, sizeof *ents);
    qio_st_meta *meta = NULL;
    size_t count = 0, meta_count = 0;
    int rc = -1;
    if (!ents) {
        qio_fail(e, "out of memory");
        goto done;
    }
    const char *key;
    json_t *val;
    json_object_foreach(root, key, val)
    {
        if (strcmp(key, "__metadata__") == 0) {
            if (json_is_null(val))
                continue; /* MLX writes "__metadata__": null when there is none */
            if (!json_is_object(val)) {
                qio_fail(e, "\"__metadata__\" is not an object");
                goto done;
            }
            meta = calloc(json_object_size(val) ? json_object_size(val) : 1, sizeof *meta);
            if (!meta) {
                qio_fail(e, "out of memory");
                goto done;
            }
            const char *mk;
            json_t *mv;
            json_object_foreach(val, mk, mv)
            {
                if (!json_is_string(mv)) {
                    qio_fail(e, "\"__metadata__\": value of \"%s\" is not a string", mk);
                    goto done;
                }
                meta[meta_count].key = qio_strdup(mk);
                meta[meta_count].value = qio_strdup(json_string_value(mv));
                if (!meta[meta_count].key || !meta[meta_count].value) {
                    meta_count++;
                    qio_fail(e, "out of memory");
                    goto done;
                }
                meta_count++;
            }
            continue;
        }
        entry *en = &ents[count];
        if (parse_entry(key, val, en, e))
            goto done;
        if (en->end > buf_size) {
            qio_fail(e, "tensor '%s': data_offsets [%llu, %llu] reach past the end of the data "
                        "(%zu bytes)", key, (unsigned long long)en->begin,
                     (unsigned long long)en->end, buf_size);
            goto done;
        }
        en->t.name = qio_strdup(key);
        if (!en->t.name) {
            qio_fail(e, "out of memory");
            goto done;
        }
        count++;
    }
    if (count > 1)
        qsort(ents, count, sizeof *ents, cmp_entry);
    uint64_t pos = 0;
    for (size_t i = 0; i < count; i++) {
        if (ents[i].begin != pos) {
            if (ents[i].begin < pos)
                qio_fail(e, "tensor '%s': data_offsets [%llu, %llu] overlap tensor '%s'",
                         ents[i].t.name, (unsigned long long)ents[i].begin,
                         (unsigned long long)ents[i].end, ents[i - 1].t.name);
            else
                qio_fail(e, "tensor '%s': %llu unused bytes before its data_offsets [%llu, %llu]",
                         ents[i].t.name, (unsigned long long)(ents[i].begin - pos),
                         (unsigned long long)ents[i].begin, (unsigned long long)ents[i].end);
            goto done;
        }
        pos = ents[i].end;
    }
    if (pos != buf_size) {
        qio_fail(e, "%llu bytes after the last tensor's data (data section %zu bytes, tensors "
                    "cover %llu)", (unsigned long long)(buf_size - pos), buf_size,
                 (unsigned long long)pos);
        goto done;
    }
    out->tensors = malloc((count ? count : 1) * sizeof *out->tensors);
    if (!out->tensors) {
        qio_fail(e, "out of memory");
        goto done;
    }
    for (size_t i = 0; i < count; i++) {
        out->tensors[i] = ents[i].t;
        out->tensors[i].t.data = data + 8 + (size_t)n + (size_t)ents[i].begin;
    }
    memset(ents, 0, count * sizeof *ents); /* their strings belong to out now */
    out->count = count;
    out->meta = meta;
    out->meta_count = meta_count;
    out->header_bytes = (size_t)n;
    meta = NULL;
    meta_count = 0;
    count = 0;
    if (build_index(out, e)) {
        qio_st_free(out);
        goto done;
    }
    rc = 0;
done:
    /* entries [0, count) are complete; the one after may hold a dtype string */
    for (size_t i = 0; ents && i < members; i++) {
        free(ents[i].t.name);
        free(ents[i].t.dtype_raw);
    }
    free(ents);
    for (size_t i = 0; i < meta_count; i++) {
        free(meta[i].key);
        free(meta[i].value);
    }
    free(meta);
    json_decref(root);
    return rc;
}

const char *qio_st_dtype_name(const qio_st_tensor *t)
{
    return t->t.dtype == QIO_OTHER ? t->dtype_raw : qio_dtype_name(t->t.dtype);
}

int qio_st_write(FILE *out, const qio_st_tensor *tensors, size_t count, const qio_st_meta *meta,
                 size_t meta_count, qio_error *e)
{
    json_t *root = json_object();
    char *text = NULL;
    int rc = -1;
    if (!root)
        return qio_fail(e, "out of memory");
    if (meta_count) {
        json_t *m = json_object();
        if (!m || json_object_set_new(root, "__metadata__", m)) {
            qio_fail(e, "out of memory");
            goto done;
        }
        for (size_t i = 0; i < meta_count; i++) {
            if (json_object_get(m, meta[i].key)) {
                qio_fail(e, "duplicate metadata key '%s'", meta[i].key);
                goto done;
            }
            if (json_object_set_new(m, meta[i].key, json_string(meta[i].value))) {
                qio_fail(e, "metadata '%s' is not valid UTF-8", meta[i].key);
                goto done;
            }
        }
    }
    uint64_t pos = 0;
    for (size_t i = 0; i < count; i++) {
        const qio_tensor *t = &tensors[i].t;
        const char *dn = qio_st_dtype_name(&tensors[i]);
        if (!dn || t->ndim < 0 || t->ndim > QIO_MAX_DIMS) {
            qio_fail(e, "tensor '%s': bad dtype or rank", tensors[i].name);
            goto done;
        }
        if (strcmp(tensors[i].name, "__metadata__") == 0 || json_object_get(root, tensors[i].name)) {
            qio_fail(e, "duplicate or reserved tensor name '%s'", tensors[i].name);
            goto done;
        }
        json_t *info = json_object(), *shape = json_array(), *offs = json_array();
        if (!info || !shape || !offs) {
            json_decref(info);
            json_decref(shape);
            json_decref(offs);
            qio_fail(e, "out of memory");
            goto done;
        }
        for (int d = 0; d < t->ndim; d++)
            json_array_append_new(shape, json_integer((json_int_t)t->shape[d]));
        json_array_append_new(offs, json_integer((json_int_t)pos));
        json_array_append_new(offs, json_integer((json_int_t)(pos + t->nbytes)));
        pos += t->nbytes;
        json_object_set_new(info, "dtype", json_string(dn));
        json_object_set_new(info, "shape", shape);
        json_object_set_new(info, "data_offsets", offs);
        if (json_object_set_new(root, tensors[i].name, info)) {
            qio_fail(e, "tensor name '%s' is not valid UTF-8", tensors[i].name);
            goto done;
        }
    }
    text = json_dumps(root, JSON_COMPACT);
    if (!text) {
        qio_fail(e, "out of memory");
        goto done;
    }
    const size_t len = strlen(text), padded = (len + 7) / 8 * 8;
    uint8_t lenbytes[8];
    for (int i = 0; i < 8; i++)
        lenbytes[i] = (uint8_t)((uint64_t)padded >> (8 * i));
    static const char spaces[8] = "       ";
    if (fwrite(lenbytes, 1, 8, out) != 8 || fwrite(text, 1, len, out) != len ||
        fwrite(spaces, 1, padded - len, out) != padded - len) {
        qio_fail(e, "write error: %s", strerror(errno));
        goto done;
    }
    for (size_t i = 0; i < count; i++) {
        const qio_tensor *t = &tensors[i].t;
        if (t->nbytes && fwrite(t->data, 1, t->nbytes, out) != t->nbytes) {
            qio_fail(e, "write error: %s", strerror(errno));
            goto done;
        }
    }
    rc = 0;
done:
    free(text);
    json_decref(root);
    return rc;
}

int qio_st_merge(const qio_st_file *parts, size_t n, qio_st_file *out, qio_error *e)
{
    memset(out, 0, sizeof *out);
    size_t count = 0, meta_cap = 0;
    for (size_t p = 0; p < n; p++) {
        if (qio_add_size(count, parts[p].count, &count) ||
            qio_add_size(meta_cap, parts[p].meta_count, &meta_cap))
            return qio_fail(e, "too many tensors");
    }
    out->tensors = calloc(count ? count : 1, sizeof *out->tensors);
    out->meta = calloc(meta_cap ? meta_cap : 1, sizeof *out->meta);
    if (!out->tensors || !out->meta) {
        qio_st_free(out);
        return qio_fail(e, "out of memory");
    }
    for (size_t p = 0; p < n; p++) {
        for (size_t i = 0; i < parts[p].count; i++) {
            const qio_st_tensor *t = &parts[p].tensors[i];
            qio_st_tensor *o = &out->tensors[out->count];
            o->t = t->t;
            o->name = qio_strdup(t->name);
            o->dtype_raw = t->dtype_raw ? qio_strdup(t->dtype_raw) : NULL;
            out->count++;
            if (!o->name || (t->dtype_raw && !o->dtype_raw)) {
                qio_st_free(out);
                return qio_fail(e, "out of memory");
            }
        }
        for (size_t i = 0; i < parts[p].meta_count; i++) {
            const qio_st_meta *m = &parts[p].meta[i];
            size_t j = 0;
            while (j < out->meta_count && strcmp(out->meta[j].key, m->key) != 0)
                j++;
            if (j < out->meta_count) {
                if (strcmp(out->meta[j].value, m->value) != 0) {
                    qio_fail(e, "metadata '%s' differs between files ('%s', '%s')", m->key,
                             out->meta[j].value, m->value);
                    qio_st_free(out);
                    return -1;
                }
                continue;
            }
            qio_st_meta *o = &out->meta[out->meta_count++];
            o->key = qio_strdup(m->key);
            o->value = qio_strdup(m->value);
            if (!o->key || !o->value) {
                qio_st_free(out);
                return qio_fail(e, "out of memory");
            }
        }
    }
    if (build_index(out, e)) {
        qio_st_free(out);
        return -1;
    }
    for (size_t i = 1; i < out->count; i++) {
        if (strcmp(out->by_name_[i - 1]->name, out->by_name_[i]->name) == 0) {
            qio_fail(e, "tensor '%s' is in more than one file", out->by_name_[i]->name);
            qio_st_free(out);
            return -1;
        }
    }
    return 0;
}
