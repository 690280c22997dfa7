//! Types of the password and SSH key commands.

qapi_struct! {
    /// Arguments of `guest-set-user-password`.
    pub struct GuestSetUserPasswordArgs as "q_obj_guest-set-user-password-arg" {
        /// Account name.
        username: String = "username",
        /// The password, base64-encoded.
        password: String = "password",
        /// Whether the password is already crypt(3)-hashed.
        crypted: bool = "crypted",
    }
}

qapi_struct! {
    /// Arguments of `guest-ssh-get-authorized-keys`.
    pub struct GuestSshGetArgs as "q_obj_guest-ssh-get-authorized-keys-arg" {
        /// Account name.
        username: String = "username",
    }
}

qapi_struct! {
    /// The result of `guest-ssh-get-authorized-keys`.
    pub struct GuestAuthorizedKeys as "GuestAuthorizedKeys" {
        /// Public keys, one per line of `authorized_keys`.
        keys: Vec<String> = "keys",
    }
}

qapi_struct! {
    /// Arguments of `guest-ssh-add-authorized-keys`.
    pub struct GuestSshAddArgs as "q_obj_guest-ssh-add-authorized-keys-arg" {
        /// Account name.
        username: String = "username",
        /// Public keys to add.
        keys: Vec<String> = "keys",
        /// Replace the file's content instead of adding.
        reset: Option<bool> = "reset",
    }
}

qapi_struct! {
    /// Arguments of `guest-ssh-remove-authorized-keys`.
    pub struct GuestSshRemoveArgs as "q_obj_guest-ssh-remove-authorized-keys-arg" {
        /// Account name.
        username: String = "username",
        /// Public keys to remove (every line equal to one of them).
        keys: Vec<String> = "keys",
    }
}
