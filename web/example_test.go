package web_test

import (
	"crypto/subtle"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"

	"github.com/bastion-dev/bastion/web"
)

func ExampleHandler_Register() {
	h := &web.Handler{
		// Recordings and Approvals are the server's backends; left nil,
		// the pages say they are not enabled.
		Authenticate: func(r *http.Request) (*web.Operator, error) {
			if subtle.ConstantTimeCompare([]byte(web.BearerToken(r)), []byte("s3cret")) != 1 {
				return nil, errors.New("unknown operator token")
			}
			return &web.Operator{Subject: "alice", Kind: "human"}, nil
		},
	}
	mux := http.NewServeMux()
	h.Register(mux)

	for _, token := range []string{"", "s3cret"} {
		r := httptest.NewRequest("GET", "/ui/api/me", nil)
		if token != "" {
			r.Header.Set("Authorization", "Bearer "+token)
		}
		w := httptest.NewRecorder()
		mux.ServeHTTP(w, r)
		fmt.Print(w.Code, " ", w.Body)
	}
	// Output:
	// 401 {"error":"unauthorized"}
	// 200 {"subject":"alice","kind":"human"}
}
