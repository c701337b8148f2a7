/*
 * model.c - MLX model directories: config.json's quantization and the (sharded) weights.
 * JSON is read with Jansson, as the safetensors headers are.
 */
#include "model.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static char *path_join(const char *dir, const char *name)
{
    size_t a = strlen(dir), b = strlen(name);
    char *p = malloc(a + b + 2);
    if (!p)
        return NULL;
    memcpy(p, dir, a);
    p[a] = '/';
    memcpy(p + a + 1, name, b + 1);
    return p;
}

/* ---- config.json -------------------------------------------------------------------------- */

/* Reads "mode", "bits" and "group_size" of obj over *fmt (which holds what the entry
 * inherits). `where` names the entry in messages. */
static int read_params(json_t *obj, const char *where, qmv_format *fmt, qio_error *e)
{
    json_t *mode = json_object_get(obj, "mode"), *bits = json_object_get(obj, "bits"),
           *group = json_object_get(obj, "group_size");
    if (mode && !json_is_null(mode)) {
        qmv_mode m;
        if (!json_is_string(mode) || qmv_mode_from_name(json_string_value(mode), &m) != QMV_STATUS_OK)
            return qio_fail(e, "quantization %s: \"mode\" is not one of affine, mxfp4, nvfp4, "
                               "mxfp8", where);
        if (m != fmt->mode)
            qmv_format_default(m, fmt); /* another mode: its own defaults, then the entry's */
    }
    if (bits && !json_is_null(bits)) {
        if (!json_is_integer(bits) || json_integer_value(bits) < 1 || json_integer_value(bits) > 8)
            return qio_fail(e, "quantization %s: \"bits\" must be an integer in [1, 8]", where);
        fmt->bits = (int)json_integer_value(bits);
    }
    if (group && !json_is_null(group)) {
        if (!json_is_integer(group) || json_integer_value(group) < 1 ||
            json_integer_value(group) > 1024)
            return qio_fail(e, "quantization %s: \"group_size\" must be an integer in [1, 1024]",
                            where);
        fmt->group_size = (int)json_integer_value(group);
    }
    return 0;
}

static int cmp_entry(const void *a, const void *b)
{
    return strcmp(((const cli_qconfig_entry *)a)->module, ((const cli_qconfig_entry *)b)->module);
}

int cli_qconfig_from_json(json_t *root, cli_qconfig *out, qio_error *e)
{
    memset(out, 0, sizeof *out);
    int rc = -1;
    json_t *q = json_is_object(root) ? json_object_get(root, "quantization") : NULL;
    if (!q && json_is_object(root))
        q = json_object_get(root, "quantization_config");
    if (!json_is_object(root)) {
        qio_fail(e, "the top level is not an object");
        goto done;
    }
    if (!q || json_is_null(q)) {
        rc = 0; /* not quantized */
        goto done;
    }
    if (!json_is_object(q)) {
        qio_fail(e, "\"quantization\" is not an object");
        goto done;
    }
    out->present = 1;
    out->global.quantized = 1;
    qmv_format_default(QMV_MODE_AFFINE, &out->global.fmt);
    if (read_params(q, "(model-wide)", &out->global.fmt, e))
        goto done;
    out->modules = calloc(json_object_size(q) ? json_object_size(q) : 1, sizeof *out->modules);
    if (!out->modules) {
        qio_fail(e, "out of memory");
        goto done;
    }
    const char *key;
    json_t *val;
    json_object_foreach(q, key, val)
    {
        if (!json_is_object(val) && !json_is_boolean(val))
            continue; /* "bits", "group_size", "mode", and other tools' scalar keys */
        cli_qconfig_entry *en = &out->modules[out->n_modules];
        en->module = qio_strdup(key);
        if (!en->module) {
            qio_fail(e, "out of memory");
            goto done;
        }
        out->n_modules++;
        en->quantized = !json_is_false(val);
        en->fmt = out->global.fmt;
        if (json_is_object(val)) {
            char where[96];
            snprintf(where, sizeof where, "entry '%.60s'", key);
            if (read_params(val, where, &en->fmt, e))
                goto done;
        }
    }
    qsort(out->modules, out->n_modules, sizeof *out->modules, cmp_entry);
    rc = 0;
done:
    if (rc)
        cli_qconfig_free(out);
    return rc;
}

void cli_qconfig_free(cli_qconfig *c)
{
    for (size_t i = 0; i < c->n_modules; i++)
        free(c->modules[i].module);
    free(c->modules);
    memset(c, 0, sizeof *c);
}

const cli_qconfig_entry *cli_qconfig_find(const cli_qconfig *c, const char *name)
{
    if (!c->present)
        return NULL;
    size_t lo = 0, hi = c->n_modules;
    while (lo < hi) {
        const size_t mid = lo + (hi - lo) / 2;
        const int r = strcmp(c->modules[mid].module, name);
        if (r == 0)
            return &c->modules[mid];
        if (r < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return &c->global;
}

/* ---- the weights ---------------------------------------------------------------------------- */

/* A shard name must name a file in the directory itself. */
static int plain_name(const char *s)
{
    return s[0] && strcmp(s, ".") != 0 && strcmp(s, "..") != 0 && !strchr(s, '/');
}

static int load_json(const char *path, json_t **out, qio_error *e)
{
    qio_blob b;
    qio_error le = {{0}};
    const char *name = strrchr(path, '/') + 1;
    if (qio_blob_load(path, &b, &le))
        return qio_fail(e, "%s: %s", name, le.msg);
    if (b.size > CLI_MODEL_JSON_MAX) {
        qio_blob_free(&b);
        return qio_fail(e, "%s: %zu bytes exceed the limit of %llu (qmv's bound on the memory of "
                           "parsing it)", name, b.size, (unsigned long long)CLI_MODEL_JSON_MAX);
    }
    json_error_t jerr;
    *out = json_loadb((const char *)b.data, b.size, JSON_REJECT_DUPLICATES, &jerr);
    qio_blob_free(&b);
    if (!*out)
        return qio_fail(e, "%s: not valid JSON: %s (line %d)", name, jerr.text, jerr.line);
    return 0;
}

/* The shard list of an index's weight_map: distinct file names in first appearance. */
static int shard_list(json_t *map, const char *dir, cli_model *m, qio_error *e)
{
    m->paths = calloc(json_object_size(map) ? json_object_size(map) : 1, sizeof *m->paths);
    if (!m->paths)
        return qio_fail(e, "out of memory");
    const char *key;
    json_t *val;
    json_object_foreach(map, key, val)
    {
        if (!json_is_string(val) || !plain_name(json_string_value(val)))
            return qio_fail(e, "weight_map: '%s' must map to a file name in the directory", key);
        char *p = path_join(dir, json_string_value(val));
        if (!p)
            return qio_fail(e, "out of memory");
        size_t i = 0;
        while (i < m->n && strcmp(m->paths[i], p) != 0)
            i++;
        if (i < m->n)
            free(p);
        else
            m->paths[m->n++] = p;
    }
    if (m->n == 0)
        return qio_fail(e, "weight_map is empty");
    return 0;
}

int cli_model_open(const char *dir, cli_model *m, qio_st_file *merged, qio_error *e)
{
    memset(m, 0, sizeof *m);
    memset(merged, 0, sizeof *merged);
    json_t *index = NULL;
    char *cfg = path_join(dir, "config.json"), *idx = path_join(dir, "model.safetensors.index.json");
    char *single = path_join(dir, "model.safetensors");
    int rc = -1;
    if (!cfg || !idx || !single) {
        qio_fail(e, "out of memory");
        goto done;
    }
    struct stat sb;
    if (stat(cfg, &sb) == 0) { /* optional; when present it must be read */
        json_t *config;
        if (load_json(cfg, &config, e))
            goto done;
        int r = cli_qconfig_from_json(config, &m->qconfig, e);
        json_decref(config);
        if (r) {
            char why[sizeof e->msg];
            snprintf(why, sizeof why, "%s", e->msg);
            qio_fail(e, "config.json: %s", why);
            goto done;
        }
    }
    if (stat(idx, &sb) == 0) {
        if (load_json(idx, &index, e))
            goto done;
        json_t *map = json_is_object(index) ? json_object_get(index, "weight_map") : NULL;
        if (!json_is_object(map)) {
            qio_fail(e, "model.safetensors.index.json has no \"weight_map\" object");
            goto done;
        }
        if (shard_list(map, dir, m, e))
            goto done;
    } else {
        m->paths = calloc(1, sizeof *m->paths);
        if (!m->paths) {
            qio_fail(e, "out of memory");
            goto done;
        }
        m->paths[0] = single;
        single = NULL;
        m->n = 1;
    }
    m->blobs = calloc(m->n, sizeof *m->blobs);
    m->st = calloc(m->n, sizeof *m->st);
    if (!m->blobs || !m->st) {
        qio_fail(e, "out of memory");
        goto done;
    }
    for (size_t i = 0; i < m->n; i++) {
        qio_error fe = {{0}};
        const char *name = strrchr(m->paths[i], '/') + 1;
        if (qio_blob_load(m->paths[i], &m->blobs[i], &fe)) {
            qio_fail(e, "%s: %s%s", name, fe.msg,
                     index ? "" : " (a model directory holds model.safetensors or "
                                  "model.safetensors.index.json)");
            goto done;
        }
        if (qio_st_parse(m->blobs[i].data, m->blobs[i].size, &m->st[i], &fe)) {
            qio_fail(e, "%s: malformed safetensors file: %s", name, fe.msg);
            goto done;
        }
        m->bytes += m->blobs[i].size;
    }
    if (index) { /* the index must describe the shards as they are */
        json_t *map = json_object_get(index, "weight_map");
        const char *key;
        json_t *val;
        json_object_foreach(map, key, val)
        {
            size_t i = 0;
            while (strcmp(strrchr(m->paths[i], '/') + 1, json_string_value(val)) != 0)
                i++;
            if (!qio_st_find(&m->st[i], key)) {
                qio_fail(e, "model.safetensors.index.json maps '%s' to %s, which does not "
                            "hold it", key, json_string_value(val));
                goto done;
            }
        }
    }
    if (qio_st_merge(m->st, m->n, merged, e))
        goto done;
    rc = 0;
done:
    json_decref(index);
    free(cfg);
    free(idx);
    free(single);
    if (rc)
        cli_model_close(m);
    return rc;
}

void cli_model_close(cli_model *m)
{
    for (size_t i = 0; i < m->n; i++) {
        if (m->st)
            qio_st_free(&m->st[i]);
        if (m->blobs)
            qio_blob_free(&m->blobs[i]);
        free(m->paths[i]);
    }
    free(m->paths);
    free(m->blobs);
    free(m->st);
    cli_qconfig_free(&m->qconfig);
    memset(m, 0, sizeof *m);
}
