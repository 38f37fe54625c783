-- The person edited their own profile.
UPDATE people SET phone = '+1 555 0100', bio = 'ED nurse educator' WHERE email = 'sam@lakeview.example.org'
