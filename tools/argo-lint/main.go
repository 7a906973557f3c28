// Command argo is `argo lint --offline` and nothing else: Argo's own lint code
// (cmd/argo/lint, with pkg/apiclient's offline client), built from Argo's Go module.
//
// The full `argo` CLI cannot be built from the module: cmd/argo reaches the ui package,
// whose embedded dist/app is not part of the module. This main calls the same code as
// `argo lint --offline` and takes the same usage, so tests and users run it as `argo`.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"strings"

	"github.com/argoproj/argo-workflows/v4/cmd/argo/lint"
	"github.com/argoproj/argo-workflows/v4/pkg/apiclient"
	wf "github.com/argoproj/argo-workflows/v4/pkg/apis/workflow"
)

var allKinds = []string{wf.WorkflowPlural, wf.WorkflowTemplatePlural, wf.CronWorkflowPlural, wf.ClusterWorkflowTemplatePlural}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: argo lint --offline [--strict=true|false] [--kinds KINDS] [-o pretty|simple] FILE...")
}

func main() {
	if len(os.Args) < 2 || os.Args[1] != "lint" {
		usage()
		os.Exit(2)
	}
	flags := flag.NewFlagSet("argo lint", flag.ContinueOnError)
	offline := flags.Bool("offline", false, "perform offline linting (the only mode this build has)")
	strict := flags.Bool("strict", true, "perform strict workflow validation")
	kinds := flags.String("kinds", "all", "which kinds to lint: "+strings.Join(allKinds, "|"))
	output := flags.String("output", "pretty", "pretty or simple")
	flags.StringVar(output, "o", "pretty", "pretty or simple (short for --output)")
	flags.Bool("no-color", false, "accepted for compatibility")
	if err := flags.Parse(os.Args[2:]); err != nil {
		os.Exit(2)
	}
	files := flags.Args()
	if !*offline || len(files) == 0 {
		usage()
		fmt.Fprintln(os.Stderr, "this build lints offline only: pass --offline and at least one FILE")
		os.Exit(2)
	}
	lintKinds := strings.Split(*kinds, ",")
	if strings.Contains(*kinds, "all") {
		lintKinds = allKinds
	}
	ctx, client, err := apiclient.NewClientFromOptsWithContext(context.Background(), apiclient.Opts{
		Offline:      true,
		OfflineFiles: files,
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	opts := lint.LintOptions{Files: files, Strict: *strict, DefaultNamespace: "default", Printer: os.Stdout}
	if err := lint.RunLint(ctx, client, lintKinds, *output, true, opts); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
