package operator

import (
	"fmt"
	"math"
	"time"

	"github.com/weir-stream/weir/dataflow"
)

// Processing-time tumbling windows (time: processing). A record belongs to
// the window of the worker's clock when it arrives; the window fires once
// the clock reaches its end, by a processing-time timer of the backend at
// end-1 in the window's namespace, which also purges it. Nothing is late.
// Restored windows whose end has passed fire at the first check of the
// clock. At the end of a bounded stream (the final watermark) every open
// window fires, so a bounded job loses nothing.

// now is the processing time in epoch milliseconds.
func (w *window) now() int64 {
	if w.ctx != nil && w.ctx.Now != nil {
		return w.ctx.Now()
	}
	return time.Now().UnixMilli()
}

func (w *window) processProcTime(r *dataflow.Record) error {
	key, err := normKey(r.Key)
	if err != nil {
		return w.fail(r, fmt.Errorf("window: %w (key the stream with key_by)", err))
	}
	w.backend.SetCurrentKey(key)
	if w.hasExpr {
		if err := w.evalArgs(r); err != nil {
			return w.fail(r, err)
		}
	}
	t := w.now()
	w.curTime, w.curFields = t, r.Fields
	end := t - mod(t, w.size) + w.size
	if w.hasMinMax {
		if err := w.checkConflicts(end-w.size, end-w.size); err != nil {
			clear(w.vals)
			return w.fail(r, err)
		}
	}
	// A processing-time window never fires from Update: the watermark
	// (math.MinInt64 for this operator) is never past its end.
	w.fold = foldResult{end: end}
	err = w.wins.Update(end, w.foldFn)
	f := w.fold
	w.fold = foldResult{}
	clear(w.vals)
	if err != nil {
		return err
	}
	if f.opened {
		w.windowOpened(key)
		w.timers.RegisterProcessingTime(end, end-1)
	}
	return nil
}

// procWindow is a processing-time window: only it is a
// dataflow.ProcessingTimeHandler, so event-time windows get no clock
// ticker in their task.
type procWindow struct{ *window }

// NextProcessingTime implements dataflow.ProcessingTimeHandler.
func (w procWindow) NextProcessingTime() (int64, bool) {
	return w.timers.NextProcessingTime()
}

// OnProcessingTime implements dataflow.ProcessingTimeHandler: fires the
// windows whose end the clock has reached.
func (w procWindow) OnProcessingTime(now int64, out dataflow.Output) error {
	return w.firePending(now, out)
}

func (w *window) firePending(now int64, out dataflow.Output) error {
	w.out = out
	err := w.timers.AdvanceProcessingTime(now, w.fireFn)
	w.out = nil
	if err == nil {
		w.publishStateSize()
	}
	return err
}

// processingWatermark forwards a watermark; the final one fires every
// open window first.
func (w *window) processingWatermark(wm int64, out dataflow.Output) error {
	if wm == dataflow.MaxWatermark {
		if err := w.firePending(math.MaxInt64, out); err != nil {
			return err
		}
	}
	return out.EmitWatermark(wm)
}
