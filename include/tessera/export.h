/* Handing a model off: ONNX (standard operators only: Gemm, Relu, Tanh,
 * Sigmoid, Softmax; opset 13, so any ONNX runtime loads it) and HDF5 model
 * files. */
#ifndef TESSERA_EXPORT_H
#define TESSERA_EXPORT_H
#include <stddef.h>
#include "tessera/model.h"
#include "tessera/api.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum { TSR_EXPORT_ONNX = 0, TSR_EXPORT_HDF5 = 1 } tsr_export_format_t;

/* "onnx" or "hdf5" (also "h5"); -1 for anything else. */
TSR_API int tsr_export_format_parse(const char *name);
TSR_API const char *tsr_export_format_name(tsr_export_format_t fmt);

/* The ONNX model of m as bytes (malloc'd into *buf). The graph takes
 * "input" float [N, inputs] and gives "output" [N, outputs]: softmax
 * probabilities for cross-entropy models, as tsr_model_predict does. name
 * (may be NULL) becomes the graph name. */
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

#ifdef __cplusplus
}
#endif
#endif
