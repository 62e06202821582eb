// Package deploy holds the checks of weir's deployment files: the Helm
// chart (helm/weir), the systemd units (systemd) and the Grafana dashboard
// (grafana). It is a module of its own so that Helm and the Kubernetes API
// types stay out of the weir binary's dependencies (docs/dependencies.md);
// `make test` runs it (`make test-deploy`).
package deploy
