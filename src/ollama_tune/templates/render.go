// Command render prints Ollama TEMPLATE renderings with Go's own text/template.
//
// ollama-tune builds this file once per cache directory (standard library only) and feeds it a
// batch of jobs as JSON on stdin; it answers one JSON object on stdout. Each job is rendered the
// way an Ollama server feeds a chat request to a model's TEMPLATE (ollama/ollama, MIT licence:
// server/routes.go ChatHandler, template/template.go Parse/Execute/collate/deleteNode):
//
//   - the Modelfile MESSAGEs come first; the Modelfile SYSTEM is prepended as a system message
//     when the request's first message is not a system message;
//   - consecutive messages of the same role are merged with "\n\n", every system message stays in
//     .Messages and all of them are joined with "\n\n" into .System;
//   - templates that use .Messages get the whole conversation at once; legacy .Prompt/.Response
//     templates are executed once per user/assistant exchange and the last run is cut at
//     {{ .Response }} (the generation prompt).
package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"text/template"
	"text/template/parse"
	"time"
)

// Message mirrors the fields of Ollama's api.Message that templates may reference.
type Message struct {
	Role      string   `json:"role"`
	Content   string   `json:"content"`
	Thinking  string   `json:"thinking,omitempty"`
	Images    []string `json:"images,omitempty"`
	ToolCalls []any    `json:"tool_calls,omitempty"`
	ToolName  string   `json:"tool_name,omitempty"`
}

type job struct {
	Template          string    `json:"template"`
	Messages          []Message `json:"messages"`
	System            *string   `json:"system"`
	ModelfileMessages []Message `json:"modelfile_messages"`
}

type result struct {
	Output string `json:"output"`
	Error  string `json:"error,omitempty"`
}

var funcs = template.FuncMap{
	"json": func(v any) string {
		b, _ := json.Marshal(v)
		return string(b)
	},
	// As Ollama's template/template.go: the format argument is accepted and ignored.
	"currentDate": func(args ...string) string {
		return time.Now().Format("2006-01-02")
	},
	"yesterdayDate": func(args ...string) string {
		return time.Now().AddDate(0, 0, -1).Format("2006-01-02")
	},
}

// responseNode is appended to templates that name neither .Messages nor .Response, as Ollama does.
var responseNode = parse.ActionNode{
	NodeType: parse.NodeAction,
	Pipe: &parse.PipeNode{
		NodeType: parse.NodePipe,
		Cmds: []*parse.CommandNode{{
			NodeType: parse.NodeCommand,
			Args:     []parse.Node{&parse.FieldNode{NodeType: parse.NodeField, Ident: []string{"Response"}}},
		}},
	},
}

func main() {
	var jobs []job
	if err := json.NewDecoder(os.Stdin).Decode(&jobs); err != nil {
		fmt.Fprintln(os.Stderr, "render: bad input:", err)
		os.Exit(2)
	}
	results := make([]result, len(jobs))
	for i, j := range jobs {
		out, err := render(j)
		if err != nil {
			results[i] = result{Error: err.Error()}
		} else {
			results[i] = result{Output: out}
		}
	}
	enc := json.NewEncoder(os.Stdout)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(results); err != nil {
		fmt.Fprintln(os.Stderr, "render:", err)
		os.Exit(1)
	}
}

func render(j job) (string, error) {
	tmpl, err := template.New("").Option("missingkey=zero").Funcs(funcs).Parse(j.Template)
	if err != nil {
		return "", err
	}
	vars := identifiers(tmpl)
	if !vars["messages"] && !vars["response"] {
		tmpl.Tree.Root.Nodes = append(tmpl.Tree.Root.Nodes, &responseNode)
	}
	msgs := append(append([]Message{}, j.ModelfileMessages...), j.Messages...)
	if j.System != nil && *j.System != "" && (len(j.Messages) == 0 || j.Messages[0].Role != "system") {
		msgs = append([]Message{{Role: "system", Content: *j.System}}, msgs...)
	}
	system, collated := collate(msgs)
	var b bytes.Buffer
	if vars["messages"] {
		err = tmpl.Execute(&b, map[string]any{
			"System": system, "Messages": collated, "Tools": nil, "Response": "",
			"Think": false, "IsThinkSet": false,
		})
		return b.String(), err
	}
	return renderLegacy(tmpl, collated)
}

// collate merges consecutive same-role messages and joins every system message into one string.
func collate(msgs []Message) (string, []*Message) {
	var system []string
	var collated []*Message
	for i := range msgs {
		if msgs[i].Role == "system" {
			system = append(system, msgs[i].Content)
		}
		if n := len(collated); n > 0 && collated[n-1].Role == msgs[i].Role && msgs[i].Role != "tool" {
			collated[n-1].Content += "\n\n" + msgs[i].Content
		} else {
			m := msgs[i]
			collated = append(collated, &m)
		}
	}
	return strings.Join(system, "\n\n"), collated
}

// renderLegacy runs a .Prompt/.Response template once per exchange, then the cut final run.
func renderLegacy(tmpl *template.Template, messages []*Message) (string, error) {
	var b bytes.Buffer
	var system, prompt, response string
	execute := func() error {
		err := tmpl.Execute(&b, map[string]any{"System": system, "Prompt": prompt, "Response": response})
		system, prompt, response = "", "", ""
		return err
	}
	for _, m := range messages {
		switch m.Role {
		case "system":
			if prompt != "" || response != "" {
				if err := execute(); err != nil {
					return "", err
				}
			}
			system = m.Content
		case "user":
			if response != "" {
				if err := execute(); err != nil {
					return "", err
				}
			}
			prompt = m.Content
		case "assistant":
			response = m.Content
		}
	}
	cut := false
	root := deleteNode(tmpl.Root.Copy(), func(n parse.Node) bool {
		if field, ok := n.(*parse.FieldNode); ok && contains(field.Ident, "Response") {
			cut = true
			return false
		}
		return cut
	})
	tree := parse.Tree{Root: root.(*parse.ListNode)}
	last := template.Must(template.New("").Funcs(funcs).AddParseTree("", &tree))
	err := last.Execute(&b, map[string]any{"System": system, "Prompt": prompt, "Response": response})
	return b.String(), err
}

func contains(xs []string, s string) bool {
	for _, x := range xs {
		if x == s {
			return true
		}
	}
	return false
}

// identifiers returns the lower-cased field and variable names a template uses.
func identifiers(t *template.Template) map[string]bool {
	set := map[string]bool{}
	var walk func(n parse.Node)
	walk = func(n parse.Node) {
		switch n := n.(type) {
		case *parse.ListNode:
			if n != nil {
				for _, c := range n.Nodes {
					walk(c)
				}
			}
		case *parse.TemplateNode:
			if n.Pipe != nil {
				walk(n.Pipe)
			}
		case *parse.ActionNode:
			walk(n.Pipe)
		case *parse.BranchNode:
			if n.Pipe != nil {
				walk(n.Pipe)
			}
			if n.List != nil {
				walk(n.List)
			}
			if n.ElseList != nil {
				walk(n.ElseList)
			}
		case *parse.IfNode:
			walk(&n.BranchNode)
		case *parse.RangeNode:
			walk(&n.BranchNode)
		case *parse.WithNode:
			walk(&n.BranchNode)
		case *parse.PipeNode:
			for _, c := range n.Cmds {
				for _, a := range c.Args {
					walk(a)
				}
			}
		case *parse.FieldNode:
			for _, id := range n.Ident {
				set[strings.ToLower(id)] = true
			}
		case *parse.VariableNode:
			for _, id := range n.Ident {
				set[strings.ToLower(id)] = true
			}
		}
	}
	for _, tt := range t.Templates() {
		if tt.Tree != nil {
			walk(tt.Root)
		}
	}
	return set
}

// deleteNode removes every node for which fn is true (Ollama uses it to cut at .Response).
func deleteNode(n parse.Node, fn func(parse.Node) bool) parse.Node {
	var walk func(n parse.Node) parse.Node
	walk = func(n parse.Node) parse.Node {
		if fn(n) {
			return nil
		}
		switch t := n.(type) {
		case *parse.ListNode:
			var nodes []parse.Node
			for _, c := range t.Nodes {
				if c := walk(c); c != nil {
					nodes = append(nodes, c)
				}
			}
			t.Nodes = nodes
			return t
		case *parse.IfNode:
			t.BranchNode = *(walk(&t.BranchNode).(*parse.BranchNode))
		case *parse.WithNode:
			t.BranchNode = *(walk(&t.BranchNode).(*parse.BranchNode))
		case *parse.RangeNode:
			t.BranchNode = *(walk(&t.BranchNode).(*parse.BranchNode))
		case *parse.BranchNode:
			t.List = walk(t.List).(*parse.ListNode)
			if t.ElseList != nil {
				t.ElseList = walk(t.ElseList).(*parse.ListNode)
			}
		case *parse.ActionNode:
			p := walk(t.Pipe)
			if p == nil {
				return nil
			}
			t.Pipe = p.(*parse.PipeNode)
		case *parse.PipeNode:
			var commands []*parse.CommandNode
			for _, c := range t.Cmds {
				var args []parse.Node
				for _, a := range c.Args {
					if a := walk(a); a != nil {
						args = append(args, a)
					}
				}
				if len(args) == 0 {
					return nil
				}
				c.Args = args
				commands = append(commands, c)
			}
			if len(commands) == 0 {
				return nil
			}
			t.Cmds = commands
		}
		return n
	}
	return walk(n)
}
