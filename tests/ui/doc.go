// Package ui tests the coordinator's web status page in real headless
// Chromium (chromedp) against an in-process cluster with real workers and
// a Kafka-protocol dev broker. Screenshots of every page are written to
// $WEIR_UI_ARTIFACTS (default: a temporary directory); with
// WEIR_UI_DOCS=1 they are also copied to docs/ui/.
package ui
