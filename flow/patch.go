package flow

import (
	"bytes"
	"encoding/json"
	"reflect"
)

// mergeDiff returns the RFC 7396 merge patch that turns prev into next.
//
// Flow merges a checkpoint's state into the previous one as a merge patch,
// which adds and replaces members but only removes those the patch sets to
// null. Sending a stream's new state as is would therefore keep members it
// dropped: the ids of events that have left the overlap window would pile
// up in events.seen forever. The patch sets every dropped member to null, so
// that the merged state is exactly next. States hold no nulls of their own
// (a null in a patch means "remove").
func mergeDiff(prev, next any) any {
	p, pok := prev.(map[string]any)
	n, nok := next.(map[string]any)
	if !pok || !nok {
		return next
	}
	patch := map[string]any{}
	for k := range p {
		if _, ok := n[k]; !ok {
			patch[k] = nil
		}
	}
	for k, nv := range n {
		pv, ok := p[k]
		switch {
		case !ok:
			patch[k] = nv
		case reflect.DeepEqual(pv, nv):
		default:
			_, pobj := pv.(map[string]any)
			_, nobj := nv.(map[string]any)
			if pobj && nobj {
				patch[k] = mergeDiff(pv, nv)
			} else {
				patch[k] = nv
			}
		}
	}
	return patch
}

// decodeJSON decodes raw keeping numbers exact (event ids' times, cursors).
func decodeJSON(raw []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	return v, nil
}
