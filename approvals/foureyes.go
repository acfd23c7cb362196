package approvals

import (
	"fmt"
	"strings"
	"unicode"

	"github.com/bastion-dev/bastion/identity"
	"github.com/bastion-dev/bastion/masking"
	"golang.org/x/text/cases"
	"golang.org/x/text/unicode/norm"
)

// Canonical is the form in which two subjects are compared for the
// four-eyes rule: spaces around it trimmed, invisible runes (format
// characters such as zero-width spaces and bidi marks, default-ignorable
// runes) removed, then NFKC and full case folding, then NFKC again (folding
// can undo a normalization). "DEMO-AGENT", "demo-agent ", "ｄｅｍｏ-ａｇｅｎｔ"
// and "demo\u200b-agent" are all "demo-agent".
//
// It does not map look-alikes from other scripts (Cyrillic "е" for Latin
// "e", UTS #39 skeletons): such a name is another account, which the
// identity provider vouches for, and the CLI's --as names an approver
// nobody verifies in the first place (whoever can open the data
// directory can type any name).
func Canonical(subject string) string {
	s := strings.Map(func(r rune) rune {
		if unicode.Is(unicode.Cf, r) || unicode.Is(unicode.Other_Default_Ignorable_Code_Point, r) || unicode.Is(unicode.Variation_Selector, r) {
			return -1
		}
		return r
	}, strings.TrimSpace(subject))
	s = norm.NFKC.String(s)
	s = cases.Fold().String(s) // a Caser keeps state: one per call
	return strings.TrimSpace(norm.NFKC.String(s))
}

// fourEyes refuses an approval by the requester, or by the human who
// sponsors the requesting agent (the person who set an agent to work does
// not approve its commands). Subjects are compared in Canonical form and
// issuers are not compared: the CLI names its approver with issuer "cli"
// and the web UI with none, so a different issuer does not make another
// person here; refusing a rare namesake from another identity provider is
// the safe mistake.
func fourEyes(id string, approver, requester identity.Provenance) error {
	who := Canonical(approver.Subject)
	if who == "" {
		return fmt.Errorf("approve %s: %w: the approver's subject %q is empty once invisible characters are removed", id, ErrInvalid, masking.Display(approver.Subject))
	}
	if who == Canonical(requester.Subject) {
		return fmt.Errorf("approve %s: %w (%s asked for it)", id, ErrSelfApproval, masking.Display(requester.String()))
	}
	if requester.Sponsor != "" && who == Canonical(requester.Sponsor) {
		return fmt.Errorf("approve %s: %w (%s sponsors %s, which asked for it)", id, ErrSelfApproval,
			masking.Display(requester.Sponsor), masking.Display(requester.String()))
	}
	return nil
}
