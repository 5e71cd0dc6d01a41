/* SPDX-License-Identifier: BSD-3-Clause */
/* Handing a model off: ONNX (standard operators of opset 13 only, so any
 * ONNX runtime loads it; every built-in layer kind, and plugin kinds that
 * give an onnx hook) and HDF5 model files. */
#ifndef TESSERA_EXPORT_H
#define TESSERA_EXPORT_H
#include "tessera/api.h"
#include <stddef.h>
#include <stdint.h>
#include "tessera/model.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum { TSR_EXPORT_ONNX = 0, TSR_EXPORT_HDF5 = 1 } tsr_export_format_t;

/* "onnx" or "hdf5" (also "h5"); -1 for anything else. */
TSR_API int tsr_export_format_parse(const char *name);
TSR_API const char *tsr_export_format_name(tsr_export_format_t fmt);

/* The ONNX model of m as bytes (malloc'd into *buf). The graph takes
 * "input" float [N, inputs] (image rows flat, channels first, as /predict
 * takes them) and gives "output" [N, outputs]: what tsr_model_predict
 * gives (softmax probabilities for cross-entropy, sigmoid for binary
 * cross-entropy). name (may be NULL) becomes the graph name. A plugin kind
 * without an onnx hook is refused (TSR_ENOTSUP, naming the layer). */
TSR_API int tsr_export_onnx_buffer(const tsr_model_t *m, const char *name, unsigned char **buf, size_t *len);
/* The same, written to path atomically ("-": to standard output). */
TSR_API int tsr_export_onnx(const tsr_model_t *m, const char *name, const char *path);

/* Exports the model file at model_path to out_path in fmt (HDF5: a copy,
 * after checking the file loads). Written atomically, or to standard output
 * when out_path is "-"; an out_path that is the model file itself, or an
 * existing FIFO, device or directory, is refused (TSR_EINVAL). */
TSR_API int tsr_export_file(const char *model_path, tsr_export_format_t fmt, const char *out_path);
/* The same for a model that may declare up to max_params parameters (0:
 * TSR_MODEL_MAX_PARAMS_DEFAULT, what tsr_export_file allows). */
TSR_API int tsr_export_file_max(const char *model_path, tsr_export_format_t fmt, const char *out_path,
                                size_t max_params);

/* The builder a layer kind's onnx hook (tessera/layer.h) adds nodes
 * through. The hook gets its input's name and must produce its output's:
 * a layer whose shape has h * w > 1 reads and writes [N, C, H, W] (channels
 * first, as ONNX's Conv and pools), any other [N, D]. Every call copies
 * what it is given; after a failure the builder ignores further calls and
 * the export returns that error. */
typedef struct tsr_onnx tsr_onnx_t;
/* Adds a node of the standard domain (opset 13): op(in[0..nin)) -> out. */
TSR_API int tsr_onnx_node(tsr_onnx_t *b, const char *op, const char *const *in, int nin, const char *out);
/* Attributes of the node added last. */
TSR_API int tsr_onnx_attr_int(tsr_onnx_t *b, const char *name, int64_t v);
TSR_API int tsr_onnx_attr_ints(tsr_onnx_t *b, const char *name, const int64_t *v, int n);
TSR_API int tsr_onnx_attr_float(tsr_onnx_t *b, const char *name, float v);
/* A float initializer of shape dims[0..ndims) named "layer_<i>.<what>"
 * (what unique within the layer); returns that name, or NULL after an error. */
TSR_API const char *tsr_onnx_floats(tsr_onnx_t *b, const char *what, const float *data, const int64_t *dims, int ndims);
/* A fresh name for an intermediate value of the current layer. */
TSR_API const char *tsr_onnx_value(tsr_onnx_t *b, const char *what);

#ifdef __cplusplus
}
#endif
#endif
