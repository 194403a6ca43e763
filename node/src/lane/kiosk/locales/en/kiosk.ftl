# The gate screens' texts, English. Every message here exists in every language
# (node/src/lane/kiosk/tests.rs checks it). Words a traveller understands: no codes.

lang-name = English
service-name = Smart Immigration Clearance
choose-language = Language
reminder = Always carry your physical travel document: border officers may ask to see it.

## Gate 1, before a passage
ready-face = Remove sunglasses, mask and hat, and look at the camera — or present your travel document.
ready-card = Please present your travel document.
channel-closed = This channel is closed. Please use another channel.
card-only = Face scan is not available at the moment. Please present your travel document.
one-at-a-time = One person at a time, please.
look-at-camera = Please look at the camera.
face-prompt = Please remove sunglasses, mask and hat, and look at the camera.
not-recognised = Your face was not recognised. Please present your travel document.

## Why face scan cannot be used today
face-unavailable = Face scan cannot be used for you today. Please present your travel document or see an officer.
why-cancelled = Your Smart Immigration Clearance registration was cancelled.
why-under-age = Face scan is for travellers aged { $age } and over.
why-document-not-accepted = This travel document cannot be used for face scan.
why-document-not-yet-valid = Your travel document is not valid yet.
why-document-expired = Your travel document has expired.
why-document-not-five-year = Face scan needs a travel permit valid for five years.
why-endorsement-missing = Your permit has no exit endorsement.
why-endorsement-not-multiple-entry = Face scan needs a multiple-entry endorsement.
why-endorsement-not-yet-valid = Your endorsement is not valid yet.
why-endorsement-expired = Your endorsement has expired.
why-not-registered-macao = You are not registered for Macao's automated clearance service.
why-not-registered-mainland = You are not registered for the Mainland's automated clearance service.
why-fingerprint-authorisation-missing = You have not authorised the Macao authorities to read your fingerprint data.
why-guardian-consent-missing = A parent's or guardian's consent is needed first, at a service location.
why-consent-missing-macao = Your Smart Immigration Clearance registration is not on record with the Macao authorities.
why-consent-missing-mainland = Your Smart Immigration Clearance registration is not on record with the Mainland authorities.
why-endorsement-not-accepted = This endorsement cannot be used in this channel.
see-officer = Please see an officer.
document-unreadable = Your travel document could not be read.
try-again-or-officer = Please place it on the reader again, or see an officer.

## Registration (seed 000: declaration, Agree, consent to both authorities)
minor-needs-guardian = To register, a traveller aged { $from } to { $to } first needs a parent's or guardian's consent, given at a service location.
card-continues = This time you pass by card scan: please proceed to gate 2.
checking = One moment, please: checking whether you can register for face scan.
cannot-register = You cannot register for face scan yet. This time you pass by card scan: please proceed to gate 2.
declaration-title = Register for Smart Immigration Clearance?
declaration-text = I agree to register for Smart Immigration Clearance. My facial features will be collected, and my consent will be sent to the Macao and Mainland border inspection authorities for their records. From my next trip I can pass by face scan instead of card scan.
agree = Agree
not-now = Not now
registering = Registering… Please look at the camera.
registered = Registration complete. You can use face scan from your next trip.
registration-failed = Registration could not be completed.
registration-unavailable = Registration for face scan is not available at the moment.
registration-pending = Your registration is still being recorded.

## The passage
welcome = Welcome. Please proceed to gate 2.
biometrics = Please look at the camera and place your finger on the reader.
fingerprint-retry = Please place your finger on the reader again.
inspecting = Inspection in progress. Please wait.
cleared = Clearance complete. Have a good journey.

## Held for an officer
wait-officer = Please wait here. An officer will come to help you.
why-hold-one-at-a-time = Only one person may be in the channel at a time.
why-hold-out-of-service = This channel is out of service.
why-hold-check = Your clearance needs an officer's check.
