package command

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/weir-stream/weir/coordinator/auth"
)

// devToken gives weir dev's coordinator a tokens file with one admin token,
// both under the data directory: dataDir/tokens (the hash, the
// coordinator's --tokens-file) and dataDir/admin.token (the token itself,
// mode 0600, for the CLI and the web UI's login). A token made by an
// earlier run is kept while the tokens file still lists it, so exported
// WEIR_TOKENs and logged-in browsers keep working across restarts.
func devToken(dataDir string) (token, tokensFile, tokenFile string, err error) {
	tokensFile = filepath.Join(dataDir, "tokens")
	tokenFile = filepath.Join(dataDir, "admin.token")
	if b, err := os.ReadFile(tokenFile); err == nil {
		tok := strings.TrimSpace(string(b))
		if data, err := os.ReadFile(tokensFile); err == nil {
			if m, err := auth.Parse(data); err == nil {
				if p, ok := m[auth.Hash(tok)]; ok && p.Role == auth.Admin {
					return tok, tokensFile, tokenFile, nil
				}
			}
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return "", "", "", fmt.Errorf("read %s: %w", tokenFile, err)
	}
	if token, err = auth.NewToken(); err != nil {
		return "", "", "", err
	}
	lines := "# weir dev: the admin token in admin.token (docs/security.md)\n" + auth.Line("dev-admin", auth.Admin, token) + "\n"
	if err := os.WriteFile(tokenFile, []byte(token+"\n"), 0o600); err != nil {
		return "", "", "", fmt.Errorf("write %s: %w", tokenFile, err)
	}
	if err := os.WriteFile(tokensFile, []byte(lines), 0o600); err != nil {
		return "", "", "", fmt.Errorf("write %s: %w", tokensFile, err)
	}
	return token, tokensFile, tokenFile, nil
}
