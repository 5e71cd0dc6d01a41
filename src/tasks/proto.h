/* SPDX-License-Identifier: BSD-3-Clause */
/* Messages between the dispatcher (rank 0) and the ranks' workers, as
 * bytes (buf.h encoding). Rank 0's own worker gets the same bytes without
 * MPI (internal).
 *
 *  TAG_RUN    dispatcher -> worker: tasks, each
 *             u32 idx, u16 attempt, u16 cores, u16 gpus, f64 timeout_s,
 *             str id, str cmd, str cwd, str out, str err, u32 nenv, str env...
 *  TAG_CTL    dispatcher -> worker: u8 kind, then
 *             CTL_KILL u32 idx, u16 attempt | CTL_REVOKE | CTL_STOP f64 drain_s
 *             | CTL_EXIT i32 code
 *  TAG_EVENTS worker -> dispatcher: events, each u8 kind, then
 *             EV_STARTED u32 idx, u16 attempt, f64 start, str where
 *             EV_DONE u32 idx, u16 attempt, u8 how, i32 code, f64 start, f64 end, str tail
 *             EV_RETURNED u32 idx, u16 attempt | EV_STOPREQ i32 signal | EV_BYE
 */
#ifndef TSR_TASKS_PROTO_H
#define TSR_TASKS_PROTO_H

enum { TAG_RUN = 7101, TAG_CTL = 7102, TAG_EVENTS = 7103 };
enum { CTL_KILL = 1, CTL_REVOKE, CTL_STOP, CTL_EXIT };
enum { EV_STARTED = 1, EV_DONE, EV_RETURNED, EV_STOPREQ, EV_BYE };

#endif
