/*
 * cli.h - what the subcommands of the qmv tool share: messages, number parsing, input files,
 * float arrays, quantized tensors in MLX's layout (with the tool's metadata), output files,
 * the progress bar. Uses the public API (qmv.h) and qmv_fileio only.
 *
 * Conventions of every subcommand: errors go to stderr as "qmv CMD: FILE: reason"; exit
 * status 0 success, 1 a verification failed (verify, bench), 2 usage error, unreadable or
 * malformed input, or a runtime error. Outputs are written under a temporary name and renamed
 * at the end, so a failure never leaves a partial file.
 */
#ifndef QMV_TOOLS_CLI_H
#define QMV_TOOLS_CLI_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "model.h"
#include "npy.h"
#include "qmv.h"
#include "safetensors.h"

#define CLI_OK 0
#define CLI_FAIL 1  /* a check failed */
#define CLI_ERROR 2 /* usage, input or runtime error */

/* The subcommand's name, for messages ("quantize"). */
extern const char *cli_cmd;

void cli_error(const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 1, 2)))
#endif
    ;
void cli_warn(const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 1, 2)))
#endif
    ;
/* Text from a file (a tensor name, a metadata key or value) made safe to print: control
 * characters (C0, DEL, C1), bidirectional overrides and bytes that are not valid UTF-8 become
 * \xNN (\u{NNNN} for the code points), everything else is kept. The result lives in one of
 * 8 rotating buffers: valid until 8 more calls (enough for one printf). cli_error and cli_warn
 * escape their whole message this way (pass names to them raw); what goes to stdout is
 * escaped field by field with cli_esc. */
const char *cli_esc(const char *s);

/* "qmv CMD: what: STATUS (last error)" for a failed library call; returns CLI_ERROR. */
int cli_qmv_error(const char *what, qmv_status st);

/* Strict number parsing: the whole string, within [lo, hi]. 0 or -1. */
int cli_parse_i64(const char *s, int64_t lo, int64_t hi, int64_t *out);
int cli_parse_double(const char *s, double *out);
/* A bad option value: prints "qmv CMD: bad value 'V' for --OPT" and returns CLI_ERROR. */
int cli_bad_value(const char *opt, const char *value);
/* --threads T (0..4096, 0 = all): CLI_OK and *threads set, or CLI_ERROR (cli_bad_value). */
int cli_parse_threads(const char *arg, int *threads);

/* A usage error: "qmv CMD: " + the message, then the subcommand's usage on stderr; returns
 * CLI_ERROR. */
int cli_usage_error(void (*usage)(FILE *), const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

double cli_now(void); /* monotonic seconds */

/* ---- Input files -------------------------------------------------------------------------- */

typedef enum { CLI_NPY = 1, CLI_SAFETENSORS = 2 } cli_kind;

typedef struct {
    const char *path;
    qio_blob blob;
    cli_kind kind;
    qio_tensor npy;   /* kind == CLI_NPY */
    qio_st_file st;   /* kind == CLI_SAFETENSORS: the file's tensors, or every shard's */
    cli_model *model; /* a model directory (its shards and config.json); NULL for a file */
} cli_file;

/* Loads and parses a .npy or safetensors file (by its first bytes), or an MLX model
 * directory (model.h; kind CLI_SAFETENSORS). Prints the error. */
int cli_file_open(const char *path, cli_file *f);
void cli_file_close(cli_file *f);

/* The qmv dtype of a float tensor: F32, F16, BF16, and U16 (NumPy's stand-in for bfloat16).
 * -1 for any other dtype. */
int cli_float_dtype(qio_dtype dt, qmv_dtype *out);
/* The qio dtype holding a qmv dtype (BF16 for bfloat16). */
qio_dtype cli_qio_dtype(qmv_dtype dt);

/* A float array read from a file, copied to an aligned buffer. float64 input is rounded to
 * float32 (round to nearest even). Rows: the last dimension is k, the others are flattened
 * into m (a 1-D array is one row). */
typedef struct {
    qmv_dtype dtype;
    int from_f64; /* the file held float64, rounded to float32 here */
    int64_t m, k;
    void *data;
    size_t bytes;
    int ndim;
    int64_t shape[QIO_MAX_DIMS];
} cli_array;

/* Reads a float array from a .npy file or a safetensors file holding one tensor (or the one
 * named `tensor`). `what` names the argument in messages ("--x"). */
int cli_array_load(const char *path, const char *tensor, const char *what, cli_array *out);
void cli_array_free(cli_array *a);

/* Reads `count` expert indices (any integer dtype, any shape of that many elements) from a
 * .npy file or a safetensors file of one tensor, each in [0, experts): *out is malloc'd. 0, or
 * -1 with the error printed. `what` names the argument ("--experts"). */
int cli_index_load(const char *path, const char *what, int64_t experts, int64_t count,
                   int32_t **out);

/* ---- Quantized tensors --------------------------------------------------------------------- */

/* Format flags given on the command line (0 / unset = not given). */
typedef struct {
    int have_mode;
    qmv_mode mode;
    int bits;
    int group_size;
    int have_global_scale;
    float global_scale;
} cli_fmt_flags;

/* One quantized matrix NAME.weight / NAME.scales / NAME.biases: views of the file's mapped
 * data where they are aligned for their element type (uint32 codes, float scales), aligned
 * copies otherwise (MLX does not pad its headers), so a matrix costs no second copy in memory. */
typedef struct {
    char *name; /* NAME, without ".weight" */
    qmv_format fmt;
    qmv_dtype scale_dtype; /* affine: dtype of scales and biases; fp modes: unused */
    const char *fmt_source; /* "qmv metadata", "flags", "shapes" */
    int64_t rows, k;
    int64_t experts; /* E of an expert stack [E, N, ...] (MoE); 0 for one matrix */
    const uint32_t *packed;
    const void *scales, *biases;
    void *own_[3];  /* the copies made (NULL where packed/scales/biases are views) */
    cli_file *file_; /* the file the views point into, when q owns it (cli_load_matrix_x) */
    size_t packed_bytes, scales_bytes, biases_bytes;
    int has_global_scale;
    float global_scale;
    int has_orig_dtype; /* the dtype the matrix was quantized from (qmv metadata) */
    qmv_dtype orig_dtype;
} cli_qtensor;

/* Metadata keys the tool writes (every value a string, as safetensors requires). */
#define CLI_META_MODE "qmv.mode"
#define CLI_META_BITS "qmv.bits"
#define CLI_META_GROUP "qmv.group_size"
#define CLI_META_PROFILE "qmv.profile"
#define CLI_META_VERSION "qmv.version"
#define CLI_META_GS_PREFIX "qmv.global_scale." /* + NAME: hex float, e.g. "0x1.8p+3" */
#define CLI_META_DTYPE_PREFIX "qmv.dtype."     /* + NAME: "float16" */

/* The NAMEs of the quantized matrices of a safetensors file (each with a U32 NAME.weight and a
 * NAME.scales), in file order. *names is a malloc'd array of pointers into the file's
 * tensor names, freed with free(). */
int cli_qtensor_names(const cli_file *f, const char ***names, size_t *count);

/* Describes how the format of NAME would be decided (for `qmv info`), without loading it:
 * 0 and *fmt set when the format is known, -1 and a reason in why otherwise. */
int cli_qtensor_format(const cli_file *f, const char *name, const cli_fmt_flags *flags,
                       qmv_format *fmt, const char **source, char *why, size_t why_size);

/* Loads NAME ("NAME" or "NAME.weight") from a safetensors file: the format from flags, the
 * file's qmv metadata, or the shapes (fp modes are recognised by their scale shape; affine
 * needs --bits or --group-size unless only one combination fits). Prints the error. q's data
 * may be views into f: f must stay open while q is used. Only the header and (for nvfp4) a
 * NAME.global_scale tensor are read; the data is touched when it is used, or copied when
 * misaligned. */
int cli_qtensor_load(const cli_file *f, const char *name, const cli_fmt_flags *flags,
                     cli_qtensor *out);
/* cli_qtensor_load without the data: format, shapes, sizes, global scale and source dtype,
 * with packed, scales and biases NULL (for `qmv info`, which reads headers only). */
int cli_qtensor_describe(const cli_file *f, const char *name, const cli_fmt_flags *flags,
                         cli_qtensor *out);
void cli_qtensor_free(cli_qtensor *q);

/* Opens `path` and loads the matrix `tensor` (NULL: the file's only quantized matrix). */
int cli_open_matrix(const char *path, const char *tensor, const cli_fmt_flags *flags,
                    cli_file *f, cli_qtensor *q);

/* The operands of matvec and verify: the matrix `tensor` of wpath (cli_open_matrix; q keeps
 * the file open, cli_qtensor_free closes it), narrowed to its expert `expert` (>= 0, required
 * for an expert stack; -1 for none; CLI_ALL_EXPERTS: a stack, kept whole for --experts), and
 * the float array x of xpath ("--x"). A matrix with no
 * rows is refused (y would be empty, and arrays with an empty dimension are never read). 0;
 * or -1 with the error printed and nothing left to free. */
int cli_load_matrix_x(const char *wpath, const char *tensor, int64_t expert,
                      const cli_fmt_flags *flags, const char *xpath, cli_qtensor *q,
                      cli_array *x);
/* x's rows must have the matrix's K columns: 0, or -1 with the error printed. */
int cli_check_x_cols(const char *xpath, const cli_array *x, const cli_qtensor *q);

/* A dense qmv_qmatrix over q's buffers (global scale included); for an expert stack, the
 * whole stack with the experts as batch items (qmv_qmatrix_select, qmv_gather_qmv). */
int cli_qmatrix(const cli_qtensor *q, qmv_qmatrix *out);

/* Narrows the expert stack q to its expert e (a plain matrix afterwards). 0, or -1 with the
 * error printed (q not a stack, e out of range). */
int cli_qtensor_expert(cli_qtensor *q, int64_t e, const char *path);

/* For commands on every matrix of a file: format options that fit the matrices as different
 * formats (--group-size 64 giving one 4-bit and one 3-bit matrix) are refused with the error
 * printed (-1), since a model's matrices may differ in format and such an option does not
 * say which; 0 otherwise. names as cli_qtensor_names gives them. */
int cli_flags_uniform(const cli_file *f, const char *const *names, size_t n,
                      const cli_fmt_flags *fl);

/* Adds the getopt_long options --mode, --bits, --group-size (CLI_FMT_LONG_OPTIONS) and
 * --global-scale (CLI_GLOBAL_SCALE_LONG_OPTION, a finite float) to a subcommand: call from the
 * option loop; returns 1 if ch was one of them (with *rc set on a bad value), else 0. */
#define CLI_OPT_MODE 1001
#define CLI_OPT_BITS 1002
#define CLI_OPT_GROUP 1003
#define CLI_OPT_GLOBAL_SCALE 1004
/* clang-format off */
#define CLI_FMT_LONG_OPTIONS                                                                    \
    {"mode", required_argument, NULL, CLI_OPT_MODE},                                            \
    {"bits", required_argument, NULL, CLI_OPT_BITS},                                            \
    {"group-size", required_argument, NULL, CLI_OPT_GROUP}
#define CLI_GLOBAL_SCALE_LONG_OPTION                                                            \
    {"global-scale", required_argument, NULL, CLI_OPT_GLOBAL_SCALE}
/* clang-format on */
int cli_fmt_option(int ch, const char *arg, cli_fmt_flags *flags, int *rc);

/* --expert E of matvec and verify: which expert of a stack (MoE) every vector uses; or
 * --experts IDX: a file of one expert index per vector (MLX's gather_qmm). */
#define CLI_OPT_EXPERT 1005
#define CLI_OPT_EXPERTS 1006
#define CLI_ALL_EXPERTS (-2)
/* clang-format off */
#define CLI_EXPERT_LONG_OPTIONS                                                                 \
    {"expert", required_argument, NULL, CLI_OPT_EXPERT},                                        \
    {"experts", required_argument, NULL, CLI_OPT_EXPERTS}
/* clang-format on */
/* Sets *expert for CLI_OPT_EXPERT (an integer >= 0), or *expert = CLI_ALL_EXPERTS and
 * *index_path for CLI_OPT_EXPERTS (*rc set on a bad value or both given): returns 1 if ch was
 * one of them, else 0. */
int cli_expert_option(int ch, const char *arg, int64_t *expert, const char **index_path,
                      int *rc);

/* ---- Output ------------------------------------------------------------------------------- */

/* Writes one tensor as .npy, or tensors (+ metadata) as safetensors, atomically. Prints. */
int cli_write_npy(const char *path, int force, const qio_tensor *t);
int cli_write_safetensors(const char *path, int force, const qio_st_tensor *ts, size_t n,
                          const qio_st_meta *meta, size_t meta_n);

/* a + b in a fresh malloc'd string (NULL when out of memory). */
char *cli_join(const char *a, const char *b);

/* 1 when the path names a .npy file (by extension), 0 otherwise. */
int cli_is_npy_path(const char *path);

/* The format an output path asks for by its extension (case-insensitive): CLI_NPY for .npy,
 * CLI_SAFETENSORS for .safetensors, no_extension for a name without one ("-", /dev/null);
 * any other extension is an error (printed, -1): the format is never guessed. */
int cli_out_kind(const char *path, cli_kind no_extension);

/* ---- Progress ----------------------------------------------------------------------------- */

/* A progress bar on stderr, drawn only when stderr is a terminal (or forced with
 * --progress), at most 10 times a second. */
typedef struct {
    int on;
    double last;
    const char *label;
} cli_progress;

/* mode: -1 auto (isatty(2)), 0 off, 1 on. */
void cli_progress_begin(cli_progress *p, const char *label, int mode);
void cli_progress_update(cli_progress *p, double fraction);
void cli_progress_end(cli_progress *p);

/* Option parsing of the progress switches: --progress / --no-progress. */
#define CLI_OPT_PROGRESS 1010
#define CLI_OPT_NO_PROGRESS 1011
/* clang-format off */
#define CLI_PROGRESS_LONG_OPTIONS                                                               \
    {"progress", no_argument, NULL, CLI_OPT_PROGRESS},                                          \
    {"no-progress", no_argument, NULL, CLI_OPT_NO_PROGRESS}
/* clang-format on */
/* Sets *mode (cli_progress_begin's) for CLI_OPT_PROGRESS / CLI_OPT_NO_PROGRESS: returns 1 if
 * ch was one of them, else 0. */
int cli_progress_option(int ch, int *mode);

/* ---- Subcommands -------------------------------------------------------------------------- */

int cmd_info(int argc, char **argv);
int cmd_quantize(int argc, char **argv);
int cmd_dequantize(int argc, char **argv);
int cmd_matvec(int argc, char **argv);
int cmd_verify(int argc, char **argv);
int cmd_bench(int argc, char **argv);

#endif /* QMV_TOOLS_CLI_H */
