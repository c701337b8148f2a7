/*
 * model.h - MLX model directories for the qmv tool: the weights of DIR/model.safetensors or
 * of the shards that DIR/model.safetensors.index.json maps, and the quantization that
 * DIR/config.json records (as mlx-lm writes it: a "quantization" object, also copied to
 * "quantization_config", with the model-wide "group_size", "bits" and optional "mode", and an
 * entry per module path where a module differs: an object of its own parameters, or false for
 * a module left in floating point).
 */
#ifndef QMV_TOOLS_MODEL_H
#define QMV_TOOLS_MODEL_H

#include <jansson.h>
#include <stddef.h>

#include "qio.h"
#include "qmv.h"
#include "safetensors.h"

/* config.json and model.safetensors.index.json are refused above this size: parsing JSON costs
 * 10-20 bytes of memory per byte (the bound of safetensors headers, QIO_ST_MAX_HEADER). */
#define CLI_MODEL_JSON_MAX QIO_ST_MAX_HEADER

/* One quantization entry of config.json. */
typedef struct {
    char *module;  /* module path ("model.layers.0.mlp.down_proj"); NULL for the model-wide one */
    int quantized; /* 0: the module is not quantized (false) */
    qmv_format fmt;
} cli_qconfig_entry;

typedef struct {
    int present; /* config.json has a quantization object */
    cli_qconfig_entry global;
    cli_qconfig_entry *modules; /* sorted by module path */
    size_t n_modules;
} cli_qconfig;

/* The quantization of a parsed config.json: 0 (present = 0 when the model is not quantized),
 * or -1 with e set (a quantization entry qmv cannot read: a wrong type, bits or group size out
 * of range, an unknown mode). */
int cli_qconfig_from_json(json_t *root, cli_qconfig *out, qio_error *e);
void cli_qconfig_free(cli_qconfig *c);

/* The entry that applies to the matrix NAME (the module path; a trailing ".weight" is not
 * part of it): its own entry, else the model-wide one. NULL when c is not present. */
const cli_qconfig_entry *cli_qconfig_find(const cli_qconfig *c, const char *name);

/* The files of a model directory. */
typedef struct {
    size_t n;
    char **paths;     /* DIR/shard, in the order of the index (first appearance) */
    qio_blob *blobs;  /* mapped */
    qio_st_file *st;  /* parsed */
    cli_qconfig qconfig;
    size_t bytes;     /* the shards' total size */
} cli_model;

/* Opens DIR: config.json (optional), then model.safetensors.index.json (every tensor of its
 * weight_map must be in the shard it names, and shard names must be plain file names in DIR)
 * or model.safetensors. *merged is one view of every shard's tensors (qio_st_merge). 0, or -1
 * with e set and nothing to free. */
int cli_model_open(const char *dir, cli_model *m, qio_st_file *merged, qio_error *e);
void cli_model_close(cli_model *m);

#endif /* QMV_TOOLS_MODEL_H */
