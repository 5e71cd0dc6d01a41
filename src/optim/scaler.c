/* SPDX-License-Identifier: BSD-3-Clause */
/* The fp16 loss scaler (optim.h): torch.cuda.amp.GradScaler's update rule
 * (_amp_update_scale_) on the host, where the step's skip is decided. */
#include "tessera/optim.h"

#include <math.h>

void tsr_loss_scaler_init(tsr_loss_scaler_t *s)
{
    *s = (tsr_loss_scaler_t){.scale = 65536.0, .growth = 2.0, .backoff = 0.5, .interval = 2000};
}

int tsr_loss_scaler_update(tsr_loss_scaler_t *s, int finite)
{
    if (!finite) {
        s->scale *= s->backoff;
        s->good = 0;
        s->skipped++;
        return 0;
    }
    if (++s->good == s->interval) {
        double grown = s->scale * s->growth;
        /* PyTorch keeps the scale when the grown one is not finite (float32 there). */
        if (isfinite((float)grown))
            s->scale = grown;
        s->good = 0;
    }
    return 1;
}
