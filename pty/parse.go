package pty

import (
	"strings"

	"mvdan.cc/sh/v3/syntax"
)

// parse parses a complete input the way the editor sees it: as bash, with
// the newline that ends its last line.
func parse(src string) (*syntax.File, error) {
	p := syntax.NewParser(syntax.Variant(syntax.LangBash), syntax.KeepComments(true))
	return p.Parse(strings.NewReader(src+"\n"), "")
}

// incomplete reports whether bash would keep reading after src: an open
// quote or compound command, an open here-document, or a trailing backslash
// outside a comment. A syntax error that more input cannot fix is not
// incomplete; the input then goes to Check, which refuses it.
func incomplete(src string) bool {
	f, err := parse(src)
	if err != nil {
		return syntax.IsIncomplete(err)
	}
	n := 0
	for i := len(src) - 1; i >= 0 && src[i] == '\\'; i-- {
		n++
	}
	if n%2 == 0 {
		return false
	}
	// mvdan/sh takes "\<newline><EOF>" as complete; bash asks for another
	// line, unless the backslash is inside a comment.
	inComment := false
	syntax.Walk(f, func(node syntax.Node) bool {
		if c, ok := node.(*syntax.Comment); ok && int(c.End().Offset()) >= len(src) {
			inComment = true
		}
		return !inComment
	})
	return !inComment
}
