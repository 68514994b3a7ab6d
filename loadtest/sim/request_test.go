package sim

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/tsunagu/tsunagu/client"
	pb "github.com/tsunagu/tsunagu/proto/routingv1"
)

// A carrier retries what the contract says to retry. UNAVAILABLE (the
// shard between owners) is retried after a pause and counted; a refusal
// such as INVALID_ARGUMENT is final at once.
func TestRequestRetriesUnavailableNotRefusals(t *testing.T) {
	cases := []struct {
		name     string
		answers  []error
		wantErr  pb.ErrorCode
		wantDone int
		wantErrs map[string]int
	}{
		{
			name:     "unavailable, then served",
			answers:  []error{&client.Error{Code: pb.ErrorCode_ERROR_CODE_UNAVAILABLE}, nil},
			wantDone: 2,
			wantErrs: map[string]int{"arrive: retried after unavailable": 1},
		},
		{
			name:     "unavailable three times",
			answers:  []error{&client.Error{Code: pb.ErrorCode_ERROR_CODE_UNAVAILABLE}, &client.Error{Code: pb.ErrorCode_ERROR_CODE_UNAVAILABLE}, &client.Error{Code: pb.ErrorCode_ERROR_CODE_UNAVAILABLE}},
			wantErr:  pb.ErrorCode_ERROR_CODE_UNAVAILABLE,
			wantDone: 3,
			wantErrs: map[string]int{"arrive: retried after unavailable": 2, "arrive: unavailable": 1},
		},
		{
			name:     "refused",
			answers:  []error{&client.Error{Code: pb.ErrorCode_ERROR_CODE_INVALID_ARGUMENT}, nil},
			wantErr:  pb.ErrorCode_ERROR_CODE_INVALID_ARGUMENT,
			wantDone: 1,
			wantErrs: map[string]int{"arrive: invalid_argument": 1},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := &runner{cfg: Config{RequestTimeout: time.Second}, errs: map[string]int{}}
			done := 0
			err := r.request("arrive", func(context.Context) error {
				done++
				return c.answers[done-1]
			})
			var ce *client.Error
			switch {
			case c.wantErr == pb.ErrorCode_ERROR_CODE_UNSPECIFIED && err != nil:
				t.Fatalf("request: %v; want served", err)
			case c.wantErr != pb.ErrorCode_ERROR_CODE_UNSPECIFIED && (!errors.As(err, &ce) || ce.Code != c.wantErr):
				t.Fatalf("request: %v; want %v", err, c.wantErr)
			}
			if done != c.wantDone {
				t.Errorf("asked %d times; want %d", done, c.wantDone)
			}
			if len(r.errs) != len(c.wantErrs) {
				t.Errorf("errors counted %v; want %v", r.errs, c.wantErrs)
			}
			for k, n := range c.wantErrs {
				if r.errs[k] != n {
					t.Errorf("errors counted %v; want %v", r.errs, c.wantErrs)
				}
			}
		})
	}
}
