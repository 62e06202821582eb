package command

import (
	"github.com/spf13/cobra"

	"github.com/weir-stream/weir/internal/buildinfo"
	"github.com/weir-stream/weir/internal/registry"
)

// versionInfo is `weir version -o json`.
type versionInfo struct {
	buildinfo.Info
	Operators []operatorInfo `json:"operators"`
}

type operatorInfo struct {
	ID      string `json:"id"`
	Kind    string `json:"kind"`
	Module  string `json:"module"`
	Version string `json:"version"`
	Package string `json:"package"`
}

func newVersionCommand(g *globals) *cobra.Command {
	c := &cobra.Command{
		Use:   "version",
		Short: "Print weir's version, the Go release, and the modules and operators compiled in",
		Args:  cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			p, err := g.printer()
			if err != nil {
				return err
			}
			v := versionInfo{Info: buildinfo.Read(), Operators: []operatorInfo{}}
			for _, e := range registry.All() {
				v.Operators = append(v.Operators, operatorInfo{ID: e.ID, Kind: string(e.Kind), Module: e.Module, Version: e.Version, Package: e.Package})
			}
			weir := v.Weir
			if v.WeirReplace != "" {
				weir += " => " + v.WeirReplace
			}
			rows := [][]string{{"weir", weir}, {"go", v.Go}}
			if v.Custom() {
				rows = append(rows, []string{"main", v.Main + " (weir build)"})
			}
			for _, w := range v.With {
				rows = append(rows, []string{"with", w + replacedBy(v.Modules, w)})
			}
			for _, o := range v.Operators {
				rows = append(rows, []string{"operator", o.ID + " (" + o.Kind + ", " + o.Module + " " + o.Version + ")"})
			}
			return p.print(v, nil, rows)
		},
	}
	addOutputFlag(c, g)
	return c
}

// replacedBy says what replaced the module of a path@version, if anything.
func replacedBy(mods []buildinfo.Module, with string) string {
	for _, m := range mods {
		if m.Replace != "" && len(with) > len(m.Path) && with[:len(m.Path)] == m.Path && with[len(m.Path)] == '@' {
			return " => " + m.Replace
		}
	}
	return ""
}
