package bastion

import "github.com/bastion-dev/bastion/recordings"

// WithoutRecordings makes shell sessions run with no recording (a nil
// Writer records nothing) until restore is called: for the benchmark that
// measures the cost of recording, never for a test of behaviour.
func WithoutRecordings() (restore func()) {
	createRecording = func(string, recordings.Header, recordings.Options) (*recordings.Writer, error) { return nil, nil }
	return func() { createRecording = recordings.Create }
}
