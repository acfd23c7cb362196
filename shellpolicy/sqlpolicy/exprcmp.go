package sqlpolicy

// Comparing and hashing the expressions of a condition, with a column
// written without its table taken as the target's.

import (
	"hash/fnv"
	"strconv"

	pg_query "github.com/pganalyze/pg_query_go/v6"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// sameExprIn is sameExpr for two expressions of a condition on t: a column
// written without a table (outside a subquery) is t's column, so id and
// t.id are the same.
func sameExprIn(a, b *pg_query.Node, t target) bool {
	if a == nil || b == nil {
		return a == b
	}
	if !t.spend(1) {
		return false
	}
	n := 0
	same := sameMessageIn(a.ProtoReflect(), b.ProtoReflect(), t.name, false, &n)
	t.spend(n)
	return same
}

var (
	columnRefDescriptor  = (&pg_query.ColumnRef{}).ProtoReflect().Descriptor()
	selectStmtDescriptor = (&pg_query.SelectStmt{}).ProtoReflect().Descriptor()
)

// columnName is a column reference's qualifier and name, the qualifier
// filled in with tname for an unqualified column outside subqueries.
func columnName(c *pg_query.ColumnRef, tname string, inSub bool) (q, col string, ok bool) {
	f := c.Fields
	if len(f) == 0 || f[len(f)-1].GetString_() == nil {
		return "", "", false
	}
	col = f[len(f)-1].GetString_().GetSval()
	switch {
	case len(f) == 1 && !inSub && tname != "":
		return tname, col, true
	case len(f) == 2 && f[0].GetString_() != nil:
		return f[0].GetString_().GetSval(), col, true
	}
	return "", "", false
}

func sameMessageIn(a, b protoreflect.Message, tname string, inSub bool, n *int) bool {
	*n++
	d := a.Descriptor()
	if d != b.Descriptor() || a.IsValid() != b.IsValid() {
		return false
	}
	if !a.IsValid() {
		// Both unset: equal. Descending into an unset message's message
		// fields never ends for a self-referencing type (SelectStmt's
		// larg and rarg): `... WHERE x = (SELECT 1) OR NOT x = (SELECT 1)`
		// overflowed the stack, which recover cannot catch, and took the
		// whole daemon down with one statement.
		return true
	}
	if d == nodeDescriptor {
		// Straight to the member of the oneof that is set (see walk).
		ca, cb := nodeChild(a.Interface().(*pg_query.Node)), nodeChild(b.Interface().(*pg_query.Node))
		if ca == nil || cb == nil {
			return ca == nil && cb == nil
		}
		return sameMessageIn(ca, cb, tname, inSub, n)
	}
	if d == columnRefDescriptor && a.IsValid() {
		qa, ca, oka := columnName(a.Interface().(*pg_query.ColumnRef), tname, inSub)
		qb, cb, okb := columnName(b.Interface().(*pg_query.ColumnRef), tname, inSub)
		if oka && okb {
			return qa == qb && ca == cb
		}
	}
	if d == selectStmtDescriptor {
		inSub = true
	}
	fields := d.Fields()
	for i := 0; i < fields.Len(); i++ {
		fd := fields.Get(i)
		if fd.Name() == "location" || fd.Name() == "stmt_location" {
			continue
		}
		if fd.ContainingOneof() != nil && !a.Has(fd) && !b.Has(fd) {
			continue
		}
		if a.Has(fd) != b.Has(fd) {
			return false
		}
		isMsg := fd.Kind() == protoreflect.MessageKind || fd.Kind() == protoreflect.GroupKind
		va, vb := a.Get(fd), b.Get(fd)
		switch {
		case fd.IsList() && isMsg:
			la, lb := va.List(), vb.List()
			if la.Len() != lb.Len() {
				return false
			}
			for j := 0; j < la.Len(); j++ {
				if !sameMessageIn(la.Get(j).Message(), lb.Get(j).Message(), tname, inSub, n) {
					return false
				}
			}
		case isMsg && !fd.IsMap():
			if !sameMessageIn(va.Message(), vb.Message(), tname, inSub, n) {
				return false
			}
		default:
			if !sameValue(fd, va, vb) {
				return false
			}
		}
	}
	return true
}

// exprHash is a hash of e that sameExprIn-equal expressions share. The
// hashes of the nodes below a subquery-free level are remembered for the
// WHERE (arms of nested ORs are hashed again for each OR around them).
func exprHash(e *pg_query.Node, t target) uint64 {
	var hash func(m protoreflect.Message, inSub bool) uint64
	hash = func(m protoreflect.Message, inSub bool) uint64 {
		if !m.IsValid() {
			return 0
		}
		if t.st != nil && !inSub {
			if v, ok := t.st.hashes[m]; ok {
				return v
			}
		}
		d := m.Descriptor()
		if d == nodeDescriptor {
			c := nodeChild(m.Interface().(*pg_query.Node))
			if c == nil {
				return 0
			}
			return hash(c, inSub)
		}
		t.spend(1)
		h := fnv.New64a()
		var b []byte
		h.Write(append(b, d.FullName()...))
		if d == columnRefDescriptor {
			if q, c, ok := columnName(m.Interface().(*pg_query.ColumnRef), t.name, inSub); ok {
				h.Write([]byte(q))
				h.Write([]byte{0})
				h.Write([]byte(c))
				return h.Sum64()
			}
		}
		sub := inSub || d == selectStmtDescriptor
		m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
			if fd.Name() == "location" || fd.Name() == "stmt_location" {
				return true
			}
			b = strconv.AppendInt(b[:0], int64(fd.Number()), 10)
			isMsg := fd.Kind() == protoreflect.MessageKind || fd.Kind() == protoreflect.GroupKind
			switch {
			case fd.IsList() && isMsg:
				for i := 0; i < v.List().Len(); i++ {
					b = strconv.AppendUint(append(b, ' '), hash(v.List().Get(i).Message(), sub), 16)
				}
			case isMsg && !fd.IsMap():
				b = strconv.AppendUint(append(b, ' '), hash(v.Message(), sub), 16)
			case fd.Kind() == protoreflect.StringKind && !fd.IsList():
				b = append(append(b, ' '), v.String()...)
			}
			h.Write(b)
			return true
		})
		v := h.Sum64()
		if t.st != nil && !inSub {
			if t.st.hashes == nil {
				t.st.hashes = map[protoreflect.Message]uint64{}
			}
			t.st.hashes[m] = v
		}
		return v
	}
	return hash(e.ProtoReflect(), false)
}
