package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/bastion-dev/bastion/audit"
	"github.com/bastion-dev/bastion/certs"
	"github.com/bastion-dev/bastion/identity"
	"github.com/bastion-dev/bastion/store"
	"github.com/spf13/cobra"
	"golang.org/x/crypto/ssh"
)

func init() { register(newCertsCmd) }

func newCertsCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "certs", Short: "Issue, list, show, revoke and inspect user certificates"}
	cmd.AddCommand(newCertsIssueCmd(), newCertsListCmd(), newCertsShowCmd(), newCertsRevokeCmd(), newCertsInspectCmd())
	return cmd
}

func newCertsIssueCmd() *cobra.Command {
	var (
		pubFile, subject, out, task, kind string
		principals                        []string
		ttl                               time.Duration
	)
	cmd := &cobra.Command{
		Use:   "issue",
		Short: "Break-glass: sign a user certificate directly (audited)",
		Long: `Sign a user certificate for a public key without an OIDC token. This is the
break-glass path for operators; every use is stored and audited. Prints the
OpenSSH certificate line on stdout unless --out is given.`,
		Args: cobra.NoArgs,
	}
	dir := dataDirFlag(cmd)
	cmd.Flags().StringVar(&pubFile, "public-key", "", "OpenSSH public key file to certify (required)")
	cmd.Flags().StringSliceVar(&principals, "principal", nil, "principal (login user) the certificate is valid for (repeatable, required)")
	cmd.Flags().DurationVar(&ttl, "ttl", 0, "lifetime (default: certs.default_ttl, at most certs.max_ttl)")
	cmd.Flags().StringVar(&subject, "subject", "", "subject named in the key id and provenance (default: $USER)")
	cmd.Flags().StringVar(&kind, "kind", "human", "identity kind: human or agent")
	cmd.Flags().StringVar(&task, "task", "", "task or ticket the certificate is for")
	cmd.Flags().StringVar(&out, "out", "", "write the certificate to this file instead of stdout")
	cmd.MarkFlagRequired("public-key")
	cmd.MarkFlagRequired("principal")
	cmd.RunE = func(c *cobra.Command, _ []string) error {
		data, err := os.ReadFile(pubFile)
		if err != nil {
			return err
		}
		pub, _, _, _, err := ssh.ParseAuthorizedKey(data)
		if err != nil {
			return withCode(64, fmt.Errorf("--public-key %s: not an OpenSSH public key: %w", pubFile, err))
		}
		if subject == "" {
			subject = os.Getenv("USER")
		}
		if subject == "" {
			return withCode(64, errors.New("--subject is required (and $USER is empty)"))
		}
		if kind != string(identity.KindAgent) && kind != string(identity.KindHuman) {
			return withCode(64, fmt.Errorf("--kind must be agent or human, not %q", kind))
		}
		env, err := openEnv(*dir)
		if err != nil {
			return err
		}
		defer env.Close()
		prov := identity.Provenance{Kind: identity.Kind(kind), Subject: subject, Issuer: "break-glass", Task: task, Role: "break-glass"}
		cert, err := certs.SignUser(env.CAs.User, certs.UserRequest{PublicKey: pub, Provenance: prov, Principals: principals, TTL: ttl},
			certs.Options{DefaultTTL: env.Config.Certs.DefaultTTL, MaxTTL: env.Config.Certs.MaxTTL})
		if err != nil {
			env.Audit.Record(audit.Event{Time: time.Now(), Type: audit.CertRefused, Identity: &prov, Detail: map[string]any{"via": "break-glass", "reason": err.Error()}})
			return withCode(1, err)
		}
		rec := store.Cert{Serial: cert.Serial, KeyID: cert.KeyId, Provenance: prov, Principals: cert.ValidPrincipals,
			Fingerprint: ssh.FingerprintSHA256(pub), Via: "break-glass", IssuedAt: time.Now(),
			ValidAfter: time.Unix(int64(cert.ValidAfter), 0), ValidBefore: time.Unix(int64(cert.ValidBefore), 0)}
		if err := env.Store.AddCert(c.Context(), rec); err != nil {
			return err
		}
		if err := env.Audit.Record(audit.Event{Time: time.Now(), Type: audit.CertIssued, Identity: &prov, Detail: map[string]any{
			"serial": strconv.FormatUint(cert.Serial, 10), "key_id": cert.KeyId, "principals": cert.ValidPrincipals, "via": "break-glass",
			"valid_before": rec.ValidBefore, "fingerprint": rec.Fingerprint}}); err != nil {
			return err
		}
		line := certs.AuthorizedKeyLine(cert, subject)
		if out == "" {
			fmt.Fprint(c.OutOrStdout(), line)
			return nil
		}
		if err := os.WriteFile(out, []byte(line), 0o644); err != nil {
			return err
		}
		fmt.Fprintf(c.ErrOrStderr(), "wrote %s (serial %d, valid until %s)\n", out, cert.Serial, rec.ValidBefore.Format(time.RFC3339))
		return nil
	}
	return cmd
}

func newCertsListCmd() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{Use: "list", Short: "List issued certificates, newest first", Args: cobra.NoArgs}
	dir := dataDirFlag(cmd)
	cmd.Flags().BoolVar(&asJSON, "json", false, "print a JSON array")
	cmd.RunE = func(c *cobra.Command, _ []string) error {
		st, err := store.Open(dataDirOf(*dir).DB())
		if err != nil {
			return err
		}
		defer st.Close()
		list, err := st.Certs(c.Context())
		if err != nil {
			return err
		}
		if asJSON {
			enc := json.NewEncoder(c.OutOrStdout())
			enc.SetIndent("", "  ")
			return enc.Encode(list)
		}
		tw := tabwriter.NewWriter(c.OutOrStdout(), 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "SERIAL\tKEY ID\tPRINCIPALS\tVIA\tVALID BEFORE\tSTATUS")
		now := time.Now()
		for _, ce := range list {
			fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\n", ce.Serial, ce.KeyID, strings.Join(ce.Principals, ","), ce.Via,
				ce.ValidBefore.Local().Format(time.RFC3339), certStatus(ce, now))
		}
		return tw.Flush()
	}
	return cmd
}

func certStatus(c store.Cert, now time.Time) string {
	switch {
	case c.Revoked:
		return "revoked"
	case now.After(c.ValidBefore):
		return "expired"
	}
	return "valid"
}

func parseSerial(s string) (uint64, error) {
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil || n == 0 {
		return 0, withCode(64, fmt.Errorf("%q is not a certificate serial (a positive decimal number)", s))
	}
	return n, nil
}

func newCertsShowCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "show SERIAL", Short: "Show one issued certificate", Args: cobra.ExactArgs(1)}
	dir := dataDirFlag(cmd)
	cmd.RunE = func(c *cobra.Command, args []string) error {
		serial, err := parseSerial(args[0])
		if err != nil {
			return err
		}
		st, err := store.Open(dataDirOf(*dir).DB())
		if err != nil {
			return err
		}
		defer st.Close()
		ce, err := st.Cert(c.Context(), serial)
		if errors.Is(err, store.ErrNotFound) {
			return withCode(1, fmt.Errorf("no certificate with serial %d", serial))
		} else if err != nil {
			return err
		}
		enc := json.NewEncoder(c.OutOrStdout())
		enc.SetIndent("", "  ")
		return enc.Encode(ce)
	}
	return cmd
}

func newCertsRevokeCmd() *cobra.Command {
	var reason, keyID string
	cmd := &cobra.Command{
		Use:   "revoke [SERIAL]",
		Short: "Revoke a certificate by serial (or every certificate of a key id with --key-id)",
		Long: `Revoke a certificate. A running bastion reads the revocation list every
250ms: it ends the certificate's live sessions, shells and database tunnels
(the agent sees "certificate revoked", exit 217) and closes its connections
within a second, and refuses every later login, channel, command, shell line
and statement of it.`,
		Args: cobra.MaximumNArgs(1),
	}
	dir := dataDirFlag(cmd)
	cmd.Flags().StringVar(&reason, "reason", "revoked by operator", "why (stored and audited)")
	cmd.Flags().StringVar(&keyID, "key-id", "", "revoke every certificate with this key id")
	cmd.RunE = func(c *cobra.Command, args []string) error {
		var serial uint64
		if len(args) == 1 {
			var err error
			if serial, err = parseSerial(args[0]); err != nil {
				return err
			}
		}
		if serial == 0 && keyID == "" {
			return withCode(64, errors.New("give a SERIAL or --key-id"))
		}
		env, err := openEnv(*dir)
		if err != nil {
			return err
		}
		defer env.Close()
		if err := env.Store.Revoke(context.Background(), serial, keyID, reason, time.Now()); err != nil {
			return err
		}
		detail := map[string]any{"reason": reason}
		if serial != 0 {
			detail["serial"] = strconv.FormatUint(serial, 10)
		}
		if keyID != "" {
			detail["key_id"] = keyID
		}
		if err := env.Audit.Record(audit.Event{Time: time.Now(), Type: audit.CertRevoked, Detail: detail}); err != nil {
			return err
		}
		fmt.Fprintln(c.OutOrStdout(), "revoked")
		return nil
	}
	return cmd
}

func newCertsInspectCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "inspect FILE",
		Short: "Show a certificate file as ssh-keygen -L does, plus its decoded provenance",
		Args:  cobra.ExactArgs(1),
	}
	cmd.RunE = func(c *cobra.Command, args []string) error {
		data, err := os.ReadFile(args[0])
		if err != nil {
			return err
		}
		pub, _, _, _, err := ssh.ParseAuthorizedKey(data)
		if err != nil {
			return withCode(1, fmt.Errorf("%s: not an OpenSSH certificate: %w", args[0], err))
		}
		cert, ok := pub.(*ssh.Certificate)
		if !ok {
			return withCode(1, fmt.Errorf("%s: a plain public key, not a certificate", args[0]))
		}
		w := c.OutOrStdout()
		typ := "user"
		if cert.CertType == ssh.HostCert {
			typ = "host"
		}
		fmt.Fprintf(w, "Type: %s %s certificate\n", cert.Type(), typ)
		fmt.Fprintf(w, "Public key: %s\n", ssh.FingerprintSHA256(cert.Key))
		fmt.Fprintf(w, "Signing CA: %s\n", ssh.FingerprintSHA256(cert.SignatureKey))
		fmt.Fprintf(w, "Key ID: %q\n", cert.KeyId)
		fmt.Fprintf(w, "Serial: %d\n", cert.Serial)
		fmt.Fprintf(w, "Valid: from %s to %s\n", time.Unix(int64(cert.ValidAfter), 0).Format(time.RFC3339), time.Unix(int64(cert.ValidBefore), 0).Format(time.RFC3339))
		fmt.Fprintf(w, "Principals:\n")
		for _, p := range cert.ValidPrincipals {
			fmt.Fprintf(w, "        %s\n", p)
		}
		fmt.Fprintf(w, "Critical Options:%s\n", kv(cert.CriticalOptions))
		exts := map[string]string{}
		for k, v := range cert.Extensions {
			if k != certs.ExtensionIdentity {
				exts[k] = v
			}
		}
		fmt.Fprintf(w, "Extensions:%s\n", kv(exts))
		if _, ok := cert.Extensions[certs.ExtensionIdentity]; ok {
			prov, err := certs.ParseProvenance(cert)
			if err != nil {
				return withCode(1, fmt.Errorf("provenance extension: %w", err))
			}
			b, _ := json.MarshalIndent(prov, "        ", "  ")
			fmt.Fprintf(w, "Provenance (%s):\n        %s\n", certs.ExtensionIdentity, b)
		}
		return nil
	}
	return cmd
}

func kv(m map[string]string) string {
	if len(m) == 0 {
		return " (none)"
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		b.WriteString("\n        " + k)
		if m[k] != "" {
			b.WriteString(" " + m[k])
		}
	}
	return b.String()
}
