package main

import (
	"errors"
	"fmt"
	"io"

	"github.com/bastion-dev/bastion/masking"
	"github.com/spf13/cobra"
)

func init() { register(newMaskCmd) }

func newMaskCmd() *cobra.Command {
	var (
		list   bool
		values []string
	)
	c := &cobra.Command{
		Use:   "mask",
		Short: "Mask secrets in standard input",
		Long: `Copy standard input to standard output with secrets replaced by
[MASKED:<kind>], using the same engine as sessions and recordings.

The copy streams: text is written as soon as it cannot be the start of a
secret, and what is held back is written after 20ms without input, so an
endless pipe works. Input without secrets comes out byte for byte.`,
		Example: `  kubectl get secret db -o yaml | bastion mask
  bastion mask --value "$DB_PASSWORD" < app.log
  bastion mask --list-rules`,
		Args: cobra.NoArgs,
	}
	c.Flags().BoolVar(&list, "list-rules", false, "print the built-in rules, one per line: id<TAB>description")
	c.Flags().StringArrayVar(&values, "value", nil, "also mask this exact value (repeatable)")
	c.RunE = func(c *cobra.Command, _ []string) error {
		out := c.OutOrStdout()
		if list {
			for _, r := range masking.Rules() {
				if _, err := fmt.Fprintf(out, "%s\t%s\n", r.ID, r.Description); err != nil {
					return withCode(1, fmt.Errorf("write stdout: %w", err))
				}
			}
			return nil
		}
		for _, v := range values {
			if len(v) < masking.MinValueLen {
				fmt.Fprintf(c.ErrOrStderr(), "bastion: --value shorter than %d bytes ignored\n", masking.MinValueLen)
			}
		}
		w := masking.Default().WithValues(values...).Writer(out)
		err := copyMasked(w, c.InOrStdin())
		if cerr := w.Close(); err == nil && cerr != nil {
			err = fmt.Errorf("write stdout: %w", cerr)
		}
		if err != nil {
			return withCode(1, err)
		}
		return nil
	}
	return c
}

// copyMasked copies r to w until EOF. Unlike io.Copy it tells a failed
// read from a failed write.
func copyMasked(w io.Writer, r io.Reader) error {
	buf := make([]byte, 32<<10)
	for {
		n, err := r.Read(buf)
		if n > 0 {
			if _, werr := w.Write(buf[:n]); werr != nil {
				return fmt.Errorf("write stdout: %w", werr)
			}
		}
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("read stdin: %w", err)
		}
	}
}
