#!/usr/bin/env bash
# Sign Homefire.app with a Developer ID, rebuild the .dmg from the signed app, sign the .dmg,
# notarise it with Apple and staple the ticket, so Gatekeeper opens it without warnings.
#
# Runs only on a Mac (codesign, xcrun notarytool, stapler, spctl); never run on the Linux build
# machine, so this script is written carefully but untested there. Needs:
#   - Xcode command line tools;
#   - a "Developer ID Application: NAME (TEAMID)" certificate + key in the keychain;
#   - notarytool credentials stored once under a profile name:
#       xcrun notarytool store-credentials homefire-notary \
#         --apple-id you@example.com --team-id TEAMID --password <app-specific password>
#
# Usage (from the repository root, after `python3 -m installers.build all`):
#   SIGN_IDENTITY="Developer ID Application: NAME (TEAMID)" NOTARY_PROFILE=homefire-notary \
#     installers/macos/sign_and_notarize.sh
set -euo pipefail

: "${SIGN_IDENTITY:?set SIGN_IDENTITY to the Developer ID Application identity}"
: "${NOTARY_PROFILE:?set NOTARY_PROFILE to a notarytool keychain profile}"
APP="${APP:-dist/pyinstaller/Homefire.app}"
ENTITLEMENTS="installers/macos/entitlements.plist"
[ -d "$APP/Contents" ] || { echo "no app bundle at $APP" >&2; exit 1; }

sign() {
  # --options runtime: the hardened runtime notarisation requires; --timestamp: a secure
  # timestamp from Apple, also required.
  codesign --force --timestamp --options runtime --sign "$SIGN_IDENTITY" "$@"
}

# 1. Inside out: every Mach-O file (Python extensions, llama_cpp/lib, Qt libraries and
#    plugins), deepest paths first, then the Qt frameworks, then the app with its entitlements.
#    `codesign --deep` is not used for signing: Apple deprecates it and it skips entitlements.
find "$APP/Contents" -type f ! -path "*/Contents/MacOS/homefire" -print0 |
  while IFS= read -r -d '' file; do
    if file -b "$file" | grep -q "Mach-O"; then
      printf '%s\t%s\n' "$(tr -cd '/' <<<"$file" | wc -c)" "$file"
    fi
  done | sort -rn | cut -f2- |
  while IFS= read -r file; do sign "$file"; done
find "$APP/Contents" -type d -name "*.framework" -print0 | xargs -0 -n1 -I{} bash -c \
  'codesign --force --timestamp --options runtime --sign "$0" "$1"' "$SIGN_IDENTITY" {}
sign --entitlements "$ENTITLEMENTS" "$APP"
codesign --verify --strict --deep --verbose=2 "$APP"

# 2. The .dmg from the signed app (ditto keeps the signatures), then sign the image itself.
python3 -m installers.build package
DMG="$(ls -t dist/Homefire-*.dmg | head -n1)"
codesign --force --timestamp --sign "$SIGN_IDENTITY" "$DMG"

# 3. Notarise (uploads the image to Apple and waits for the verdict), staple, check.
xcrun notarytool submit "$DMG" --keychain-profile "$NOTARY_PROFILE" --wait
xcrun stapler staple "$DMG"
xcrun stapler validate "$DMG"
spctl --assess --type open --context context:primary-signature --verbose "$DMG"
echo "signed and notarised: $DMG"
