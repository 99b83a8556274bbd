package albtest

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"io"
	"net/url"
	"sort"
	"strconv"
	"strings"
)

// node is one XML element of the ELBv2 shapes: text, or child elements (a list's items are
// children named "member"). The AWS Query protocol writes the same shapes as dotted form
// keys ("Actions.member.2.ForwardConfig.TargetGroups.member.1.Weight"), so one tree serves
// requests and answers alike.
type node struct {
	name     string
	text     string
	children []*node
}

func (n *node) child(name string) *node {
	for _, c := range n.children {
		if c.name == name {
			return c
		}
	}
	return nil
}

// set replaces (or adds) the child of that name.
func (n *node) set(c *node) {
	for i, old := range n.children {
		if old.name == c.name {
			n.children[i] = c
			return
		}
	}
	n.children = append(n.children, c)
}

func (n *node) remove(name string) {
	out := n.children[:0]
	for _, c := range n.children {
		if c.name != name {
			out = append(out, c)
		}
	}
	n.children = out
}

func (n *node) members() []*node {
	var out []*node
	for _, c := range n.children {
		if c.name == "member" {
			out = append(out, c)
		}
	}
	return out
}

// textOf is the text of the child at path, or "".
func (n *node) textOf(path ...string) string {
	c := n
	for _, p := range path {
		if c = c.child(p); c == nil {
			return ""
		}
	}
	return c.text
}

func (n *node) clone() *node {
	c := &node{name: n.name, text: n.text}
	for _, ch := range n.children {
		c.children = append(c.children, ch.clone())
	}
	return c
}

// parseXML reads a document into a tree, dropping whitespace between elements.
func parseXML(data []byte) (*node, error) {
	dec := xml.NewDecoder(bytes.NewReader(data))
	var stack []*node
	var root *node
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, err
		}
		switch t := tok.(type) {
		case xml.StartElement:
			n := &node{name: t.Name.Local}
			if len(stack) > 0 {
				parent := stack[len(stack)-1]
				parent.children = append(parent.children, n)
			} else {
				root = n
			}
			stack = append(stack, n)
		case xml.EndElement:
			stack = stack[:len(stack)-1]
		case xml.CharData:
			if len(stack) > 0 {
				stack[len(stack)-1].text += strings.TrimSpace(string(t))
			}
		}
	}
	if root == nil {
		return nil, fmt.Errorf("empty XML document")
	}
	return root, nil
}

// writeXML writes the tree as XML.
func (n *node) writeXML(b *bytes.Buffer) {
	b.WriteString("<" + n.name + ">")
	if len(n.children) == 0 {
		xml.EscapeText(b, []byte(n.text))
	}
	for _, c := range n.children {
		c.writeXML(b)
	}
	b.WriteString("</" + n.name + ">")
}

// canonical is the tree as text with a structure's fields sorted by name and a list's
// items in order, so two trees compare equal when AWS would consider them the same.
func (n *node) canonical() string {
	var b strings.Builder
	n.writeCanonical(&b, 0)
	return b.String()
}

func (n *node) writeCanonical(b *strings.Builder, depth int) {
	fmt.Fprintf(b, "%s%s", strings.Repeat("  ", depth), n.name)
	if len(n.children) == 0 {
		fmt.Fprintf(b, " = %q\n", n.text)
		return
	}
	b.WriteString("\n")
	children := append([]*node(nil), n.children...)
	sort.SliceStable(children, func(i, j int) bool {
		return children[i].name != "member" && children[j].name != "member" && children[i].name < children[j].name
	})
	for _, c := range children {
		c.writeCanonical(b, depth+1)
	}
}

// fromForm builds the element called name out of the form keys under "name.": each
// "member.N" becomes the Nth list item. ok is false when the form has no such keys.
func fromForm(form url.Values, name string) (n *node, ok bool, err error) {
	type building struct {
		text    string
		fields  map[string]*building
		members map[int]*building
	}
	newB := func() *building { return &building{fields: map[string]*building{}, members: map[int]*building{}} }
	root := newB()
	prefix := name + "."
	for key, values := range form {
		if key == name && len(values) == 1 && values[0] == "" {
			ok = true // an empty list is sent as "Name="
			continue
		}
		if !strings.HasPrefix(key, prefix) {
			continue
		}
		ok = true
		parts := strings.Split(strings.TrimPrefix(key, prefix), ".")
		cur := root
		for i := 0; i < len(parts); i++ {
			if parts[i] == "member" && i+1 < len(parts) {
				idx, err := strconv.Atoi(parts[i+1])
				if err != nil || idx < 1 {
					return nil, false, fmt.Errorf("bad list index in %s", key)
				}
				if cur.members[idx] == nil {
					cur.members[idx] = newB()
				}
				cur = cur.members[idx]
				i++
				continue
			}
			if cur.fields[parts[i]] == nil {
				cur.fields[parts[i]] = newB()
			}
			cur = cur.fields[parts[i]]
		}
		cur.text = values[0]
	}
	var convert func(name string, b *building) *node
	convert = func(name string, b *building) *node {
		out := &node{name: name, text: b.text}
		var names []string
		for k := range b.fields {
			names = append(names, k)
		}
		sort.Strings(names)
		for _, k := range names {
			out.children = append(out.children, convert(k, b.fields[k]))
		}
		var idx []int
		for i := range b.members {
			idx = append(idx, i)
		}
		sort.Ints(idx)
		for _, i := range idx {
			out.children = append(out.children, convert("member", b.members[i]))
		}
		return out
	}
	return convert(name, root), ok, nil
}
